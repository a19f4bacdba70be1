// Chaos under Redis: the real server (a process, as an operator starts it) on a real store, its
// limits in a redis-server of the test's own behind a fault proxy. Under a light mixed load
// (logins, admin writes, an attacker's guesses against a locked account), Redis is dropped,
// paused at the proxy, stopped (SIGSTOP), refused, and killed and started again empty. Asserted:
// the process lives; every acknowledged write is there after; no request waits past its deadline;
// /ready says "degraded" (200) while Redis does not answer and "ok" once it does; the lockout holds.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, ADMIN_TOKEN, needs, freshStore, freePort, type FreshStore } from './helpers.ts';
import { launch, type Running } from './processes.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { startRedisServer, haveRedisServer, REDIS_SERVER, type RedisServer } from './redis-server.ts';

const DEADLINE_MS = 500;
/** The longest any request may take: a hash on a busy machine plus one Redis deadline. */
const PROMPT_MS = 3_000;
/** A request still unanswered after this is a hang. */
const GIVE_UP_MS = 8_000;
const PHASE_MS = 2_500;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const ATTACKER = '203.0.113.99';

interface Outcome {
  status: number;
  body: any;
  ms: number;
}

async function timed(url: string, json?: unknown, headers: Record<string, string> = {}): Promise<Outcome> {
  const started = performance.now();
  try {
    const response = await fetch(url, {
      method: json === undefined ? 'GET' : 'POST',
      headers: json === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: json === undefined ? undefined : JSON.stringify(json),
      signal: AbortSignal.timeout(GIVE_UP_MS),
    });
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    return { status: response.status, body, ms: performance.now() - started };
  } catch {
    // Aborted (a hang) or refused (the process is gone): 0, and how long it held us.
    return { status: 0, body: undefined, ms: performance.now() - started };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Scenario {
  name: string;
  /** Whether /ready must say degraded while the fault lasts. */
  degrades: boolean;
  inject(): Promise<void> | void;
  heal(): Promise<void> | void;
}

interface Row {
  scenario: string;
  acknowledged: number;
  lost: number;
  longestMs: number;
  hung: number;
  crashed: boolean;
  ready: string[];
  lockoutHeld: boolean;
}

for (const engine of ENGINES) {
  describe(`chaos under Redis, on ${engine.name}`, { skip: needs(`no ${REDIS_SERVER}`, haveRedisServer) }, () => {
    let redis: RedisServer;
    let proxy: FaultProxy;
    let store: FreshStore;
    let server: Running;
    let base: string;

    before(async () => {
      redis = await startRedisServer();
      proxy = await startFaultProxy({ host: '127.0.0.1', port: redis.port });
      store = await freshStore(engine);
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      server = launch(['serve'], {
        ...store.env,
        PORT: String(port),
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        LATCHKEY_REDIS_PREFIX: `chaos-${engine.name}`,
        LATCHKEY_REDIS_TIMEOUT_MS: String(DEADLINE_MS),
        LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
        LATCHKEY_TRUST_PROXY: '1',
        LATCHKEY_LOCKOUT_THRESHOLD: '5',
        LATCHKEY_IP_RATE_LIMIT: '100000',
      });
      await server.waitFor(/latchkey ready/);
    });
    after(async () => {
      server.child.kill('SIGKILL');
      await proxy.close();
      await redis.kill();
      await store.drop();
    });

    it('lives, keeps every acknowledged write, answers in time, says degraded while Redis fails, and keeps the lockout', async (t) => {
      const create = (username: string) => timed(`${base}/admin/users`, { username, email: `${username}@example.com`, password: `${username}-password` }, admin);
      assert.equal((await create('victim')).status, 201);
      assert.equal((await create('regular')).status, 201);
      const guess = (i: number) => timed(`${base}/v1/login`, { username: 'victim', password: `guess-${i}` }, { 'x-forwarded-for': ATTACKER });
      for (let i = 0; i < 5; i++) assert.equal((await guess(i)).status, 401);
      assert.equal((await guess(5)).status, 429);

      const scenarios: Scenario[] = [
        { name: 'connections dropped', degrades: false, inject: () => proxy.drop(), heal: () => {} },
        { name: 'proxy paused (accepts, never answers)', degrades: true, inject: () => proxy.pause(), heal: () => proxy.restore() },
        { name: 'redis-server SIGSTOP', degrades: true, inject: () => redis.pause(), heal: () => redis.resume() },
        { name: 'connections refused', degrades: true, inject: () => proxy.refuse(), heal: () => proxy.restore() },
        { name: 'redis-server killed, started again empty', degrades: true, inject: () => redis.kill(), heal: () => redis.start() },
      ];
      const rows: Row[] = [];
      let serial = 0;
      const tokens: string[] = [];
      for (const scenario of scenarios) {
        const outcomes: Outcome[] = [];
        const acknowledged: string[] = [];
        const ready = new Set<string>();
        let lockoutHeld = true;
        let running = true;
        const loop = async (step: () => Promise<void>) => {
          while (running) await step();
        };
        const load = Promise.all([
          loop(async () => {
            const name = `user${++serial}`;
            const reply = await create(name);
            outcomes.push(reply);
            if (reply.status === 201) acknowledged.push(name);
          }),
          loop(async () => {
            const reply = await timed(`${base}/v1/login`, { username: 'regular', password: 'regular-password' }, { 'x-forwarded-for': '198.51.100.5' });
            outcomes.push(reply);
            if (reply.status === 200) tokens.push(reply.body.access_token);
          }),
          loop(async () => {
            const reply = await guess(serial);
            outcomes.push(reply);
            if (reply.status !== 429) lockoutHeld = false;
          }),
          loop(async () => {
            const reply = await timed(`${base}/ready`);
            outcomes.push(reply);
            ready.add(`${reply.status} ${reply.body?.status ?? '-'}`);
            await sleep(100);
          }),
        ]);
        await sleep(PHASE_MS / 2);
        await scenario.inject();
        const injected = new Set(ready);
        ready.clear();
        await sleep(PHASE_MS);
        const during = [...ready];
        await scenario.heal();
        // Until /ready is ok again (or long enough to say it never was).
        const healedBy = Date.now() + 10_000;
        let healed = false;
        while (!healed && Date.now() < healedBy) {
          await sleep(200);
          healed = (await timed(`${base}/ready`)).body?.status === 'ok';
        }
        running = false;
        await load;
        let lost = 0;
        for (const name of acknowledged) if ((await timed(`${base}/admin/users/${name}`, undefined, admin)).status !== 200) lost++;
        const row: Row = {
          scenario: scenario.name,
          acknowledged: acknowledged.length,
          lost,
          longestMs: Math.round(Math.max(...outcomes.map((o) => o.ms))),
          hung: outcomes.filter((o) => o.status === 0).length,
          crashed: server.child.exitCode !== null || server.child.signalCode !== null,
          ready: [...new Set([...injected, ...during])],
          lockoutHeld,
        };
        rows.push(row);
        t.diagnostic(`${JSON.stringify(row)} healed=${healed}`);
        assert.equal(row.crashed, false, `${scenario.name}: the process died`);
        assert.equal(row.lost, 0, `${scenario.name}: acknowledged writes lost`);
        assert.equal(row.hung, 0, `${scenario.name}: requests hung`);
        assert.ok(row.longestMs < PROMPT_MS, `${scenario.name}: a request took ${row.longestMs} ms`);
        assert.ok(row.lockoutHeld, `${scenario.name}: the locked-out attacker got a guess in`);
        assert.ok(row.acknowledged > 0, `${scenario.name}: no write was acknowledged`);
        if (scenario.degrades) assert.ok(during.includes('200 degraded'), `${scenario.name}: /ready said ${during.join(', ')}`);
        assert.ok(!during.some((r) => r.startsWith('503') || r.startsWith('0')), `${scenario.name}: /ready said ${during.join(', ')}`);
        assert.ok(healed, `${scenario.name}: /ready not ok again within 10 s of the repair`);
      }
      // Every session a login acknowledged is still good.
      for (const token of tokens.slice(-20)) assert.equal((await timed(`${base}/userinfo`, undefined, { authorization: `Bearer ${token}` })).status, 200);
      assert.equal(server.child.exitCode, null);
    });
  });
}
