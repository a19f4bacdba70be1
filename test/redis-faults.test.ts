// Redis failing under Latchkey for real: a redis-server of the test's own, stopped (SIGSTOP: it
// accepts and never answers), continued, killed and started again empty. A hung Redis never
// hangs a login or a start; lockouts and the limits counted meanwhile survive the outage.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { ENGINES, ADMIN_TOKEN, needs, startServer, freshStore, freePort, post, createUser, type TestServer, type FreshStore } from './helpers.ts';
import { launch, jsonLines, type Running } from './processes.ts';
import { startRedisServer, haveRedisServer, REDIS_SERVER, type RedisServer } from './redis-server.ts';

const skip = needs(`no ${REDIS_SERVER}`, haveRedisServer);
/** Each Redis call's deadline in these tests (LATCHKEY_REDIS_TIMEOUT_MS). */
const DEADLINE_MS = 500;
/** What a login may take on a busy test machine, its hash and one Redis deadline included. */
const PROMPT_MS = 3_000;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** A request that gives up after 10 s (a hang is a failure, not a stuck suite), and how long it took. */
async function timed(url: string, json?: unknown, headers: Record<string, string> = {}) {
  const started = performance.now();
  const response = await fetch(url, {
    method: json === undefined ? 'GET' : 'POST',
    headers: json === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, ms: performance.now() - started };
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const readyState = async (base: string) => (await timed(`${base}/ready`)).body?.status;

describe('a hung Redis never hangs a login', { skip }, () => {
  let redis: RedisServer;
  let store: FreshStore;
  let server: Running;
  let base: string;

  before(async () => {
    redis = await startRedisServer();
    store = await freshStore({ name: 'sqlite' });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = launch(['serve'], { ...store.env, REDIS_URL: redis.url, PORT: String(port), LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN, LATCHKEY_REDIS_TIMEOUT_MS: String(DEADLINE_MS) });
    await server.waitFor(/latchkey ready/);
    assert.equal((await post(`${base}/admin/users`, { username: 'ann', email: 'ann@example.com', password: 'ann-password-1' }, admin)).status, 201);
  });
  after(async () => {
    server.child.kill('SIGKILL');
    await redis.kill();
    await store.drop();
  });

  it('answers within the deadline while Redis is stopped, says so once each way, and /ready says the limits are degraded', async () => {
    const login = (password: string) => timed(`${base}/v1/login`, { username: 'ann', password });
    assert.equal((await login('ann-password-1')).status, 200);
    assert.deepEqual((await timed(`${base}/ready`)).body, { status: 'ok' });
    const linesBefore = jsonLines(server.stdout()).length;
    redis.pause();
    try {
      for (const password of ['ann-password-1', 'wrong-1', 'ann-password-1', 'wrong-2']) {
        const reply = await login(password);
        assert.equal(reply.status, password.startsWith('wrong') ? 401 : 200);
        assert.ok(reply.ms < PROMPT_MS, `a login took ${Math.round(reply.ms)} ms while Redis hung`);
      }
      const ready = await timed(`${base}/ready`);
      // Logins still work, on the store's counts: ready, and saying what is degraded.
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'degraded');
      assert.match(ready.body.limits, /REDIS_URL/);
      assert.ok(ready.ms < PROMPT_MS);
    } finally {
      redis.resume();
    }
    await until('/ready is ok again', async () => (await readyState(base)) === 'ok');
    assert.equal((await login('ann-password-1')).status, 200);
    const lines = jsonLines(server.stdout()).slice(linesBefore).filter((line) => /redis/i.test(line.msg));
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.equal(lines[0].level, 40);
    assert.match(lines[0].msg, /REDIS_URL: redis:\/\/127\.0\.0\.1:\d+ does not answer .*limits count in the store/);
    assert.equal(lines[1].level, 30);
    assert.match(lines[1].msg, /is back/);
  });
});

describe('a REDIS_URL that accepts and never answers, at start', { skip }, () => {
  it('starts degraded within the deadline, with one line naming REDIS_URL, and logins work', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port: silentPort } = silent.address() as AddressInfo;
    const store = await freshStore({ name: 'sqlite' });
    const port = await freePort();
    const started = Date.now();
    const server = launch(['serve'], {
      ...store.env,
      REDIS_URL: `redis://127.0.0.1:${silentPort}`,
      PORT: String(port),
      LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
      LATCHKEY_REDIS_TIMEOUT_MS: String(DEADLINE_MS),
    });
    try {
      await Promise.race([server.waitFor(/latchkey ready/), new Promise((_, reject) => setTimeout(() => reject(new Error(`no start within 15 s:\n${server.output()}`)), 15_000))]);
      // Node and tsx take most of it; the Redis part is bounded by its deadline.
      assert.ok(Date.now() - started < 15_000);
      const warnings = jsonLines(server.stdout()).filter((line) => /REDIS_URL/.test(line.msg));
      assert.equal(warnings.length, 1, server.output());
      assert.equal(warnings[0].level, 40);
      assert.match(warnings[0].msg, new RegExp(`^REDIS_URL: cannot reach redis://127\\.0\\.0\\.1:${silentPort}: no answer within ${DEADLINE_MS} ms; limits count in the store`));
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await post(`${base}/admin/users`, { username: 'bo', email: 'bo@example.com', password: 'bo-password-12' }, admin)).status, 201);
      const login = await timed(`${base}/v1/login`, { username: 'bo', password: 'bo-password-12' });
      assert.equal(login.status, 200);
      assert.ok(login.ms < PROMPT_MS);
      assert.equal(await readyState(base), 'degraded');
    } finally {
      server.child.kill('SIGKILL');
      silent.close();
      await store.drop();
    }
  });
});

for (const engine of ENGINES) {
  describe(`limits across a Redis outage, on ${engine.name}`, { skip }, () => {
    let redis: RedisServer;
    let server: TestServer;
    let n = 0;

    before(async () => {
      redis = await startRedisServer();
      server = await startServer(engine, {
        REDIS_URL: redis.url,
        LATCHKEY_REDIS_TIMEOUT_MS: String(DEADLINE_MS),
        LATCHKEY_TRUST_PROXY: '1',
        LATCHKEY_LOCKOUT_THRESHOLD: '5',
      });
    });
    after(async () => {
      await server.close();
      await redis.kill();
    });

    async function victim() {
      const username = `victim${++n}`;
      await createUser(server, { username, email: `${username}@example.com`, password: 'victim-password' });
      return username;
    }
    const login = (username: string, password: string, ip: string) => post(`${server.url}/v1/login`, { username, password }, { 'x-forwarded-for': ip });
    const healthy = () => until('Redis counts again', async () => (await readyState(server.url)) === 'ok', 15_000);

    it('guesses before and during an outage add up to one budget: 3 before, 2 during, then locked, and still after', async () => {
      await healthy();
      const username = await victim();
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await login(username, `before-${i}`, '203.0.113.2')).status);
      await redis.kill();
      for (let i = 0; i < 3; i++) statuses.push((await login(username, `during-${i}`, '203.0.113.2')).status);
      await redis.start();
      await healthy();
      for (let i = 0; i < 3; i++) statuses.push((await login(username, `after-${i}`, '203.0.113.2')).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429]);
    });

    it('a lockout decided before Redis dies holds while it is down and after it comes back empty', async () => {
      await healthy();
      const username = await victim();
      for (let i = 0; i < 5; i++) assert.equal((await login(username, `guess-${i}`, '203.0.113.1')).status, 401);
      assert.equal((await login(username, 'victim-password', '203.0.113.1')).status, 429);
      await redis.kill();
      assert.equal((await login(username, 'victim-password', '203.0.113.1')).status, 429, 'the lockout is forgotten while Redis is down');
      // The victim, from elsewhere, is not locked out.
      assert.equal((await login(username, 'victim-password', '198.51.100.1')).status, 200);
      await redis.start();
      await healthy();
      assert.equal((await login(username, 'victim-password', '203.0.113.1')).status, 429, 'the lockout is forgotten once Redis is back');
    });

    it('a stopped Redis: counts taken meanwhile are added to its own when it answers again', async () => {
      await healthy();
      // The per-IP request limit (not a lockout) counts in Redis; its outage counts must not be forgotten.
      const ip = '203.0.113.3';
      // A new name each time, so no lockout of one (account, IP) gets in the way.
      let i = 0;
      const hit = () => timed(`${server.url}/api/authenticate`, { username: `nobody${++i}@example.com`, password: 'whatever' }, { 'x-forwarded-for': ip }).then((r) => r.status);
      const limit = 10;
      await server.close();
      server = await startServer(engine, {
        REDIS_URL: redis.url,
        LATCHKEY_REDIS_TIMEOUT_MS: String(DEADLINE_MS),
        LATCHKEY_TRUST_PROXY: '1',
        LATCHKEY_IP_RATE_LIMIT: String(limit),
      });
      await healthy();
      const statuses: number[] = [];
      for (let n = 0; n < 4; n++) statuses.push(await hit());
      redis.pause();
      try {
        // Seen by the probe alone (a count in flight when Redis hangs may be counted in both places,
        // never in neither), so the count below is exact.
        await until('the probe sees Redis hang', async () => (await readyState(server.url)) === 'degraded');
        for (let n = 0; n < 4; n++) statuses.push(await hit());
      } finally {
        redis.resume();
      }
      await healthy();
      for (let n = 0; n < 3; n++) statuses.push(await hit());
      assert.deepEqual(statuses.join(), [...Array(limit).fill(401), 429].join());
    });
  });
}
