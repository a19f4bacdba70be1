// LATCHKEY_WORKERS=2 as an operator runs it: real processes on a real store. Two worker
// processes under the primary serve the port; what one worker changes (a revocation, a password
// change, a disable) is refused by the other with its cache warm; the limits count across both,
// so a second worker gives an attacker no second budget; a worker that dies is replaced; SIGTERM
// drains both and exits 0 with nothing left; a primary killed outright leaves no worker behind;
// a taken port is still one line and exit 1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import crypto from 'node:crypto';
import { ENGINES, freshStore, freePort, ADMIN_TOKEN, type FreshStore } from './helpers.ts';
import { launch, jsonLines, childrenOf, workersOf, PATIENCE_MS, type Running } from './processes.ts';

const PASSWORD = 'workers-password-1';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const LOCKOUT_THRESHOLD = 3;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Polls until `check` holds or the deadline passes; no timing is asserted, only the outcome. */
async function eventually(check: () => Promise<boolean> | boolean, what: string, deadlineMs = PATIENCE_MS) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) assert.fail(`not seen before the deadline: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Answer {
  status: number;
  body: any;
  text: string;
}

/**
 * A client on one kept-alive connection: the cluster hands a connection to one worker, so every
 * request of this client is served by that worker, whose pid the access log names.
 */
interface Pinned {
  pid: number;
  send(method: string, path: string, json?: unknown, headers?: Record<string, string>): Promise<Answer>;
  close(): void;
}

function pinnedClient(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send = (method: string, path: string, json?: unknown, headers: Record<string, string> = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const body = json === undefined ? undefined : JSON.stringify(json);
      const request = http.request(`${base}${path}`, { method, agent, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } }, (response) => {
        let text = '';
        response.on('data', (d) => (text += d));
        response.on('end', () => {
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: response.statusCode!, body: parsed, text });
        });
      });
      request.on('error', reject);
      request.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** Which worker serves this client: the pid on the access log's line for a path only it asked for. */
async function servedBy(server: Running, client: ReturnType<typeof pinnedClient>): Promise<number> {
  const marker = `/which-worker-${crypto.randomBytes(6).toString('hex')}`;
  assert.equal((await client.send('GET', marker)).status, 404);
  await server.waitFor(new RegExp(`"url":"${marker}"`));
  const line = jsonLines(server.stdout()).find((l) => (l.req as { url?: string } | undefined)?.url === marker)!;
  return line.pid as number;
}

for (const engine of ENGINES) {
  // PostgreSQL runs with its limits in Redis when there is one, so both places limits live are seen shared.
  const redis = engine.name === 'postgres' && process.env.TEST_REDIS_URL;
  describe(`LATCHKEY_WORKERS=2 on ${engine.name}${redis ? ' with Redis' : ''}`, () => {
    let store: FreshStore;
    let server: Running;
    let base: string;
    let a: Pinned;
    let b: Pinned;
    let n = 0;

    before(async () => {
      store = await freshStore(engine);
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      server = launch(['serve'], {
        ...store.env,
        ...(redis ? { REDIS_URL: redis, LATCHKEY_REDIS_PREFIX: `workers-${crypto.randomBytes(4).toString('hex')}` } : {}),
        PORT: String(port),
        LATCHKEY_WORKERS: '2',
        LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
        LATCHKEY_IP_RATE_LIMIT: '100000',
        LATCHKEY_LOCKOUT_THRESHOLD: String(LOCKOUT_THRESHOLD),
        LATCHKEY_LOG_FORMAT: 'json',
      });
      await server.waitFor(/latchkey ready/);
      // One client per worker: new connections until one lands on the other worker.
      const first = pinnedClient(base);
      a = { ...first, pid: await servedBy(server, first) };
      for (let i = 0; i < 20 && !b; i++) {
        const other = pinnedClient(base);
        const pid = await servedBy(server, other);
        if (pid !== a.pid) b = { ...other, pid };
        else other.close();
      }
      assert.ok(b, `every connection went to worker ${a.pid}:\n${server.output()}`);
    });

    after(async () => {
      a?.close();
      b?.close();
      if (server.child.exitCode === null && server.child.signalCode === null) {
        for (const pid of childrenOf(server.child.pid!)) process.kill(pid, 'SIGKILL');
        server.child.kill('SIGKILL');
        await server.exited;
      }
      await store.drop();
    });

    async function newUser() {
      const username = `worker-${engine.name}-${++n}`;
      const created = await a.send('POST', '/admin/users', { username, email: `${username}@example.com`, password: PASSWORD }, admin);
      assert.equal(created.status, 201);
      return username;
    }

    const userinfo = (client: Pinned, token: string) => client.send('GET', '/userinfo', undefined, { authorization: `Bearer ${token}` });

    it('two worker processes under the primary serve the port; the primary serves nothing; "ready" is said once', () => {
      const primary = server.child.pid!;
      const workers = workersOf(primary);
      assert.equal(workers.length, 2, `workers of ${primary}: ${workers}`);
      assert.deepEqual([a.pid, b.pid].sort(), workers);
      assert.ok(!workers.includes(primary));
      const lines = jsonLines(server.stdout());
      const ready = lines.filter((l) => /latchkey ready/.test(l.msg));
      assert.equal(ready.length, 1, server.output());
      assert.equal(ready[0].pid, primary);
      assert.match(ready[0].msg, new RegExp(`^latchkey ready on ${base.replace(/\./g, '\\.')}; public URL .*; 2 workers$`));
      // The one-time work is the primary's: said once, by it.
      const schema = lines.filter((l) => /created the schema|created a signing key/.test(l.msg));
      assert.equal(schema.length, 2, server.output());
      assert.ok(schema.every((l) => l.pid === primary));
    });

    it('revocation, a password change and a disable on one worker are refused by the other, whose cache is warm', async () => {
      const username = await newUser();
      const logins: { access_token: string; refresh_token: string }[] = [];
      for (let i = 0; i < 4; i++) logins.push((await a.send('POST', '/v1/login', { username, password: PASSWORD })).body);
      // Every token verified (and so cached) on both workers.
      for (const client of [a, b]) for (const login of logins) for (let i = 0; i < 2; i++) assert.equal((await userinfo(client, login.access_token)).status, 200);

      // A refresh token revoked through worker a.
      const [revoked, changer, other, last] = logins;
      assert.equal((await a.send('POST', '/v1/token-revoke', { refresh_token: revoked.refresh_token })).status, 204);
      assert.equal((await userinfo(a, revoked.access_token)).status, 401, 'refused at once where it was revoked');
      await eventually(async () => (await userinfo(b, revoked.access_token)).status === 401, 'revocation seen by the other worker');
      for (const client of [a, b]) {
        assert.equal((await client.send('POST', '/v1/token-refresh', { username, refresh_token: revoked.refresh_token })).status, 401);
        assert.equal((await userinfo(client, revoked.access_token)).status, 401, 'and on every request after');
      }
      assert.equal((await userinfo(b, other.access_token)).status, 200, 'the other sessions live on');

      // A password change through worker b ends the other sessions on a too.
      const change = await b.send('POST', '/v1/change-password', { access_token: changer.access_token, previous_password: PASSWORD, proposed_password: 'workers-password-2' });
      assert.equal(change.status, 204);
      assert.equal((await userinfo(b, other.access_token)).status, 401);
      await eventually(async () => (await userinfo(a, other.access_token)).status === 401, 'password change seen by the other worker');
      assert.equal((await a.send('POST', '/v1/token-refresh', { username, refresh_token: other.refresh_token })).status, 401);

      // A disable through worker a ends the caller's own session on b too.
      assert.equal((await userinfo(b, changer.access_token)).status, 200);
      assert.equal((await a.send('POST', `/admin/users/${username}/disable`, {}, admin)).status, 200);
      assert.equal((await userinfo(a, changer.access_token)).status, 401);
      await eventually(async () => (await userinfo(b, changer.access_token)).status === 401, 'disable seen by the other worker');
      for (const client of [a, b]) assert.equal((await userinfo(client, last.access_token)).status, 401);
    });

    it('/metrics counts what every worker did, whichever worker the scrape reaches', async () => {
      const username = await newUser();
      const failures = async (client: Pinned) => {
        const scrape = await client.send('GET', '/metrics');
        assert.equal(scrape.status, 200);
        return Number(/^latchkey_auth_events_total\{kind="login_failed"\} (\d+)$/m.exec(scrape.text)?.[1] ?? 0);
      };
      const before = await failures(a);
      assert.equal(await failures(b), before, 'the same count through either worker');
      // One failed login on worker a, two on worker b: each scrape sees all three.
      for (const client of [a, b, b]) assert.equal((await client.send('POST', '/v1/login', { username, password: 'not-it' })).status, 401);
      assert.equal(await failures(a), before + 3);
      assert.equal(await failures(b), before + 3);
    });

    it('the limits count across workers: a second worker is no second budget for a guesser', async () => {
      const username = await newUser();
      // Wrong passwords, alternating workers: the lockout falls at the threshold counted over both.
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
        const client = i % 2 ? b : a;
        assert.equal((await client.send('POST', '/v1/login', { username, password: `wrong-${i}` })).status, 401, `guess ${i + 1}`);
      }
      for (const client of [a, b]) {
        const refused = await client.send('POST', '/v1/login', { username, password: PASSWORD });
        assert.equal(refused.status, 429, `worker ${client.pid} let a guess past the shared lockout`);
      }
      // The operator-token throttle too: 10 wrong admin tokens over both workers, then none (from
      // this address, for 15 minutes: the right token too, so this comes after every admin call).
      const wrong = { authorization: `Bearer ${'x'.repeat(40)}` };
      for (let i = 0; i < 10; i++) assert.equal((await (i % 2 ? b : a).send('GET', '/admin/users', undefined, wrong)).status, 401, `token guess ${i + 1}`);
      for (const client of [a, b]) assert.equal((await client.send('GET', '/admin/users', undefined, wrong)).status, 429);
    });

    it('a worker that dies is replaced, and the log says so', async () => {
      const primary = server.child.pid!;
      process.kill(b.pid, 'SIGKILL');
      b.close();
      const died = new RegExp(`worker (\\d+) \\(pid ${b.pid}\\) exited unexpectedly \\(SIGKILL\\); starting a replacement in 1 s`);
      await server.waitFor(died);
      const index = died.exec(server.output())![1];
      await server.waitFor(new RegExp(`worker ${index} \\(pid \\d+\\) is serving again`));
      const workers = workersOf(primary);
      assert.equal(workers.length, 2, `workers of ${primary}: ${workers}`);
      assert.ok(workers.includes(a.pid) && !workers.includes(b.pid), `${workers}`);
      const replacement = workers.find((pid) => pid !== a.pid)!;
      // The replacement serves: new connections reach it.
      let seen = false;
      for (let i = 0; i < 20 && !seen; i++) {
        const client = pinnedClient(base);
        seen = (await servedBy(server, client)) === replacement;
        client.close();
      }
      assert.ok(seen, `no connection reached the replacement ${replacement}`);
    });

    it('SIGTERM to the primary drains every worker (a request in flight is answered) and exits 0 with no worker left', async () => {
      const primary = server.child.pid!;
      const workers = workersOf(primary);
      assert.equal(workers.length, 2);
      // Headers and half a body: the request has begun on some worker, and cannot finish until we send the rest.
      const body = JSON.stringify({ username: 'nobody', password: 'not-the-password' });
      const port = Number(new URL(base).port);
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      let answer = '';
      socket.on('data', (d) => (answer += d));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      const before = jsonLines(server.stdout()).filter((l) => l.msg === 'incoming request').length;
      socket.write(`POST /v1/login HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
      await eventually(() => jsonLines(server.stdout()).filter((l) => l.msg === 'incoming request').length > before, 'the request reached a worker');
      server.child.kill('SIGTERM');
      await server.waitFor(/SIGTERM: shutting down 2 workers/);
      socket.write(body.slice(10));
      await closed;
      assert.match(answer, /^HTTP\/1\.1 401 /, answer);
      assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output());
      assert.match(server.output(), /"msg":"stopped"/);
      for (const pid of workers) assert.ok(!alive(pid), `worker ${pid} outlived the primary`);
      await assert.rejects(fetch(`${base}/health`), 'something still answers after the exit');
    });
  });
}

describe('LATCHKEY_WORKERS=2 and a port already in use', () => {
  it('is one line naming PORT and exit 1, not one per worker, and no worker is left', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const store = await freshStore({ name: 'sqlite' });
    try {
      const server = launch(['serve', '--workers', '2'], { ...store.env, PORT: String(port), LOG_LEVEL: 'warn' });
      const { code } = await server.exited;
      assert.equal(code, 1, server.output());
      const lines = server.stderr().trim().split('\n');
      assert.equal(lines.length, 1, server.stderr());
      assert.match(lines[0], new RegExp(`^latchkey: PORT ${port}: 127\\.0\\.0\\.1:${port} is already in use`));
      assert.doesNotMatch(server.output(), /latchkey ready|restart|replacement/);
    } finally {
      holder.close();
      await store.drop();
    }
  });
});

describe('LATCHKEY_WORKERS=2 when the primary is killed outright', () => {
  it('no worker outlives it: nothing keeps answering on the port', async () => {
    const store = await freshStore({ name: 'sqlite' });
    const port = await freePort();
    const server = launch(['serve'], { ...store.env, PORT: String(port), LATCHKEY_WORKERS: '2', LATCHKEY_LOG_FORMAT: 'json' });
    let workers: number[] = [];
    try {
      await server.waitFor(/latchkey ready/);
      workers = workersOf(server.child.pid!);
      assert.equal(workers.length, 2, server.output());
      // SIGKILL: no handler runs in the primary; the workers lose their channel to it.
      server.child.kill('SIGKILL');
      await server.exited;
      await eventually(() => workers.every((pid) => !alive(pid)), 'every worker gone after its primary');
      await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), 'something still answers');
    } finally {
      for (const pid of workers.filter(alive)) process.kill(pid, 'SIGKILL');
      server.child.kill('SIGKILL');
      await store.drop();
    }
  });
});
