// Chaos on PostgreSQL: the real server, as a process, against a real PostgreSQL behind a fault
// proxy (test/fault-proxy.ts) and pg_terminate_backend, under a light mixed load (logins,
// refreshes, verifications, admin creates). The process must live through every fault, answer
// every request within its deadline (a 503 while the store is away), keep every write it
// acknowledged, and say on /ready what it can do. The fault table is printed as diagnostics.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { needs, freshStore, freePort, ADMIN_TOKEN } from './helpers.ts';
import { launch, jsonLines } from './processes.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';

const skip = needs('TEST_DATABASE_URL is not set', !!process.env.TEST_DATABASE_URL);

/** The server's deadline for a store call (LATCHKEY_DB_TIMEOUT_MS), and what a request may take beyond it. */
const DB_TIMEOUT_MS = 3000;
const REQUEST_DEADLINE_MS = DB_TIMEOUT_MS * 2 + 2000;
/** The client gives up here, so a hung request is measured rather than waited for forever. */
const CLIENT_ABORT_MS = 20_000;

interface Outcome {
  op: string;
  status: number | 'no answer';
  ms: number;
  retryAfter?: string | null;
}

interface Phase {
  name: string;
  outcomes: Outcome[];
  ready: Array<number | 'no answer'>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chaos: PostgreSQL dropped, paused and refused under load', { skip }, () => {
  it('lives, answers within its deadline, keeps what it acknowledged, and /ready tracks the fault', async (t) => {
    const store = await freshStore({ name: 'postgres' });
    const real = new URL(store.env.DATABASE_URL);
    const proxy: FaultProxy = await startFaultProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(real);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = launch(['serve'], {
      ...store.env,
      DATABASE_URL: viaProxy.toString(),
      PORT: String(port),
      LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
      LATCHKEY_IP_RATE_LIMIT: '1000000',
      LATCHKEY_WIKIMEDIA_REFRESH_LIMIT: '1000000',
      LATCHKEY_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
      LOG_LEVEL: 'info',
    });
    const direct = postgres(real.toString(), { max: 1, onnotice: () => {} });
    let crashed: string | undefined;
    server.exited.then(({ code, signal }) => (crashed ??= `exited ${code ?? signal}`));

    let phase: Phase = { name: 'setup', outcomes: [], ready: [] };
    const phases: Phase[] = [];
    const request = async (op: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const started = Date.now();
      // A request counts in the phase it ends in: one sent just before a fault meets the fault.
      const record = (outcome: Outcome) => phase.outcomes.push(outcome);
      try {
        const response = await fetch(`${base}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(CLIENT_ABORT_MS),
        });
        const text = await response.text();
        const outcome: Outcome = { op, status: response.status, ms: Date.now() - started, retryAfter: response.headers.get('retry-after') };
        record(outcome);
        return { ...outcome, body: text ? JSON.parse(text) : undefined };
      } catch {
        const outcome: Outcome = { op, status: 'no answer', ms: Date.now() - started };
        record(outcome);
        return { ...outcome, body: undefined };
      }
    };
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

    try {
      await server.waitFor(/latchkey ready/);
      // Users and sessions made before any fault.
      const users = Array.from({ length: 6 }, (_, i) => ({ username: `steady${i}`, email: `steady${i}@example.com`, password: `correct horse ${i}` }));
      const sessions: Array<{ username: string; refresh: string; access: string }> = [];
      for (const user of users) {
        assert.equal((await request('create', '/admin/users', user, admin)).status, 201);
        const login = await request('login', '/v1/login', { username: user.username, password: user.password });
        assert.equal(login.status, 200);
        sessions.push({ username: user.username, refresh: login.body.refresh_token, access: login.body.access_token });
      }

      // The load: what each acknowledged, to check after.
      const created: string[] = [];
      const loggedIn: Array<{ username: string; refresh: string }> = [];
      let stop = false;
      let n = 0;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const k = n++;
          const s = sessions[k % sessions.length];
          const user = users[k % users.length];
          switch ((w + i) % 4) {
            case 0: {
              const name = `chaos${k}`;
              const r = await request('create', '/admin/users', { username: name, email: `${name}@example.com`, password: 'correct horse battery' }, admin);
              if (r.status === 201) created.push(name);
              break;
            }
            case 1: {
              const r = await request('login', '/v1/login', { username: user.username, password: user.password });
              if (r.status === 200) loggedIn.push({ username: user.username, refresh: r.body.refresh_token });
              break;
            }
            case 2:
              await request('refresh', '/v1/token-refresh', { username: s.username, refresh_token: s.refresh });
              break;
            default:
              await request('verify', '/auth/verify_token/', { token: s.access });
          }
          await sleep(30);
        }
      };
      const readiness = async () => {
        while (!stop) {
          try {
            const r = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(CLIENT_ABORT_MS) });
            phase.ready.push(r.status);
          } catch {
            phase.ready.push('no answer');
          }
          await sleep(250);
        }
      };
      const enter = (name: string) => {
        phase = { name, outcomes: [], ready: [] };
        phases.push(phase);
      };
      const terminateBackends = () =>
        direct`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${real.pathname.slice(1)} and pid <> pg_backend_pid()`;

      enter('steady');
      const load = [0, 1, 2, 3].map(worker);
      const probes = readiness();
      await sleep(2000);
      enter('pg_terminate_backend x3');
      for (let i = 0; i < 3; i++) {
        await terminateBackends();
        await sleep(700);
      }
      enter('after terminate');
      await sleep(2500);
      enter('proxy drop x3');
      for (let i = 0; i < 3; i++) {
        proxy.drop();
        await sleep(700);
      }
      enter('after drop');
      await sleep(2500);
      enter('paused 5 s');
      proxy.pause();
      await sleep(5000);
      proxy.restore();
      enter('after pause');
      await sleep(DB_TIMEOUT_MS + 2500);
      enter('refused 5 s');
      proxy.refuse();
      await sleep(5000);
      proxy.restore();
      enter('after refuse');
      await sleep(DB_TIMEOUT_MS + 2500);
      enter('recovered');
      await sleep(2000);
      stop = true;
      await Promise.all([...load, probes]);

      // The fault table.
      const table = phases.map((p) => {
        const by = (f: (o: Outcome) => boolean) => p.outcomes.filter(f).length;
        const statuses = [...new Set(p.outcomes.map((o) => o.status))].sort().join('/');
        return {
          phase: p.name,
          requests: p.outcomes.length,
          statuses,
          '5xx without Retry-After': by((o) => typeof o.status === 'number' && o.status >= 500 && !o.retryAfter),
          'no answer': by((o) => o.status === 'no answer'),
          'longest ms': Math.max(0, ...p.outcomes.map((o) => o.ms)),
          ready: [...new Set(p.ready)].join('/'),
        };
      });
      for (const row of table) t.diagnostic(JSON.stringify(row));
      // Why the server said 503, as it logged it (one line per distinct reason).
      const reasons = new Set(jsonLines(server.stdout()).filter((l) => l.level >= 40 && l.why).map((l) => `${l.msg}: ${String(l.why).replace(/\d+/g, 'N')}`));
      for (const reason of reasons) t.diagnostic(reason);

      // Acknowledged writes are there (read straight from PostgreSQL, not through the proxy).
      const present = new Set((await direct<{ username: string }[]>`select username from users`).map((r) => r.username));
      const lost = created.filter((name) => !present.has(name));
      const sessionsAfter = await Promise.all(
        loggedIn.map((s) => request('refresh after', '/v1/token-refresh', { username: s.username, refresh_token: s.refresh })),
      );
      const lostSessions = sessionsAfter.filter((r) => r.status !== 200).length;
      t.diagnostic(JSON.stringify({ createsAcknowledged: created.length, createsLost: lost.length, loginsAcknowledged: loggedIn.length, sessionsLost: lostSessions, crashed: crashed ?? 'no' }));

      assert.equal(crashed, undefined, `the process died:\n${server.output().slice(-3000)}`);
      assert.deepEqual(lost, [], 'every acknowledged create is in the store');
      assert.equal(lostSessions, 0, 'every acknowledged login still refreshes');
      for (const p of phases) {
        const late = p.outcomes.filter((o) => o.status === 'no answer' || o.ms > REQUEST_DEADLINE_MS);
        assert.deepEqual(late, [], `${p.name}: every request answered within ${REQUEST_DEADLINE_MS} ms`);
        const bare = p.outcomes.filter((o) => typeof o.status === 'number' && o.status >= 500 && (o.status !== 503 || !o.retryAfter));
        // The server's own account of a bare 5xx, so a failure says which error escaped.
        const unhandled = () => jsonLines(server.stdout()).filter((l) => l.level >= 50).map((l) => JSON.stringify(l.err ?? l).slice(0, 2000));
        assert.deepEqual(bare, [], `${p.name}: a store fault answers 503 with Retry-After; the server logged:\n${bare.length ? unhandled().join('\n') : ''}`);
        assert.ok(!p.ready.includes('no answer'), `${p.name}: /ready always answers`);
      }
      const phaseNamed = (name: string) => phases.find((p) => p.name === name)!;
      for (const name of ['paused 5 s', 'refused 5 s']) assert.ok(phaseNamed(name).ready.includes(503), `${name}: /ready said 503`);
      for (const name of ['steady', 'recovered']) {
        const p = phaseNamed(name);
        assert.deepEqual([...new Set(p.ready)], [200], `${name}: /ready said 200`);
        assert.ok(p.outcomes.length > 0 && p.outcomes.every((o) => o.status === 200 || o.status === 201), `${name}: everything succeeds`);
      }
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
      await proxy.close();
      await direct.end();
      await store.drop();
    }
  });
});
