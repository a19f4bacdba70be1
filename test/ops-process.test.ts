// The server and CLI as real processes, as an operator starts and stops them: stores that are
// unreachable or missing, a port already taken, what the start logs, and clean stops on
// SIGTERM/SIGINT (through `npm start` too) that finish requests in flight and queued mail.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { SMTPServer } from 'smtp-server';
import { ENGINES, needs, freshStore, freePort, post, call, ADMIN_TOKEN, type FreshStore } from './helpers.ts';
import { launch, jsonLines, ROOT, PATIENCE_MS, runToEnd } from './processes.ts';

const run = runToEnd;

/** One line on stderr, from latchkey, naming the setting: no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0], /^latchkey: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(stderr, /^\s+at /m);
}

/** A TCP port with nothing listening on it. */
const closedPort = () => freePort();

describe('a store or Redis that is not there', () => {
  it('DATABASE_URL at a closed port: serve and the CLI exit 1 with one line naming it', async () => {
    const port = await closedPort();
    const env = { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/latchkey`, PORT: String(await freePort()) };
    for (const args of [['serve'], ['migrate'], ['users', 'list'], ['keys', 'list']]) {
      const result = await run(args, env);
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.output}`);
      assertOneLine(result.stderr, new RegExp(`DATABASE_URL: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
      assert.doesNotMatch(result.output, /ready/);
    }
  });

  it('DATABASE_URL at a server that answers garbage: exits 1 with one line naming it, within the deadline', async () => {
    // Not PostgreSQL: every connection gets bytes that are no protocol message, then is closed.
    const garbage = net.createServer((socket) => socket.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const { port } = garbage.address() as AddressInfo;
    let connections = 0;
    garbage.on('connection', () => connections++);
    try {
      const started = Date.now();
      const env = { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/latchkey`, PORT: String(await freePort()), LATCHKEY_DB_TIMEOUT_MS: '2000' };
      const result = await run(['serve'], env);
      assert.equal(result.code, 1, result.output);
      assertOneLine(result.stderr, new RegExp(`DATABASE_URL: no PostgreSQL answer from 127\\.0\\.0\\.1:${port} within 2000 ms \\(LATCHKEY_DB_TIMEOUT_MS\\)`));
      assert.ok(Date.now() - started < 20_000, 'stopped within seconds');
      // Backed off: not hundreds of reconnections a second.
      assert.ok(connections < 100, `${connections} connections in ${Date.now() - started} ms`);
    } finally {
      garbage.close();
    }
  });

  it('a LATCHKEY_KEY_SECRET other than the one that sealed the keys: serve and the CLI exit 1 with one line naming it', async () => {
    const store = await freshStore({ name: 'sqlite' });
    try {
      const first = { ...store.env, PORT: String(await freePort()), LATCHKEY_KEY_SECRET: 'the-first-secret-0123456789abcdef' };
      const server = launch(['serve'], first);
      await server.waitFor(/latchkey ready/);
      server.child.kill('SIGTERM');
      await server.exited;
      for (const [secret, why] of [
        ['another-secret-0123456789abcdef0', /LATCHKEY_KEY_SECRET does not open the signing keys in this store .*set it back/],
        ['', /LATCHKEY_KEY_SECRET is not set, but the signing keys in this store are sealed/],
      ] as const) {
        for (const args of [['serve'], ['users', 'list'], ['keys', 'list']]) {
          const result = await run(args, { ...first, PORT: String(await freePort()), LATCHKEY_KEY_SECRET: secret });
          assert.equal(result.code, 1, `${args.join(' ')}: ${result.output}`);
          assertOneLine(result.stderr, why);
        }
      }
    } finally {
      await store.drop();
    }
  });

  it('LATCHKEY_DATA_DIR that cannot be a directory: one line naming it', async () => {
    const result = await run(['serve'], { LATCHKEY_DATA_DIR: '/etc/hostname/data', PORT: String(await freePort()) });
    assert.equal(result.code, 1, result.output);
    assertOneLine(result.stderr, /LATCHKEY_DATA_DIR: cannot use the embedded store in \/etc\/hostname\/data: .*ENOTDIR/);
  });

  it('REDIS_URL at a closed port: serves anyway with limits in memory, and says so', async () => {
    const store = await freshStore({ name: 'sqlite' });
    const redisPort = await closedPort();
    const port = await freePort();
    const server = launch(['serve'], { ...store.env, REDIS_URL: `redis://127.0.0.1:${redisPort}`, PORT: String(port), LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN });
    try {
      await server.waitFor(/latchkey ready/);
      const warning = jsonLines(server.stdout()).find((line) => /REDIS_URL/.test(line.msg))!;
      assert.ok(warning, server.output());
      assert.equal(warning.level, 40);
      assert.match(warning.msg, new RegExp(`^REDIS_URL: cannot reach redis://127\\.0\\.0\\.1:${redisPort}: .*ECONNREFUSED.*limits count in the store`));
      // Logins work, counted in the store meanwhile.
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await post(`${base}/admin/users`, { username: 'ann', email: 'ann@example.com', password: 'ann-password-1' }, { authorization: `Bearer ${ADMIN_TOKEN}` })).status, 201);
      assert.equal((await post(`${base}/v1/login`, { username: 'ann', password: 'ann-password-1' })).status, 200);
      server.child.kill('SIGTERM');
      assert.deepEqual(await server.exited, { code: 0, signal: null });
    } finally {
      server.child.kill('SIGKILL');
      await store.drop();
    }
  });

  it('REDIS_URL at a closed port: a CLI command still does its work, with one warning on stderr', async () => {
    const store = await freshStore({ name: 'sqlite' });
    try {
      // `users list` reads a store that exists; migrate makes it.
      assert.equal((await run(['migrate'], store.env)).code, 0);
      const result = await run(['users', 'list'], { ...store.env, REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
      assert.equal(result.code, 0, result.output);
      assert.deepEqual(JSON.parse(result.stdout), []);
      const warnings = jsonLines(result.stderr).filter((line) => line.level >= 40);
      assert.equal(warnings.length, 1, result.stderr);
      assert.match(warnings[0].msg, /^REDIS_URL: cannot reach/);
    } finally {
      await store.drop();
    }
  });
});

describe('a PostgreSQL database that does not exist', { skip: needs('TEST_DATABASE_URL is not set', !!process.env.TEST_DATABASE_URL) }, () => {
  it('is named, with the command that creates it, by serve and the CLI', async () => {
    const url = new URL(process.env.TEST_DATABASE_URL!);
    url.pathname = '/latchkey_no_such_database';
    for (const args of [['serve'], ['migrate']]) {
      const result = await run(args, { DATABASE_URL: url.toString(), PORT: String(await freePort()) });
      assert.equal(result.code, 1, result.output);
      assertOneLine(result.stderr, /DATABASE_URL: database "latchkey_no_such_database" does not exist on .*createdb .*latchkey_no_such_database/);
    }
  });
});

describe('a port already in use', () => {
  it('is one line naming PORT, exit 1, and never "ready"', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const store = await freshStore({ name: 'sqlite' });
    try {
      const result = await run(['serve'], { ...store.env, PORT: String(port) });
      assert.equal(result.code, 1, result.output);
      assertOneLine(result.stderr, new RegExp(`PORT ${port}: 127\\.0\\.0\\.1:${port} is already in use`));
      assert.doesNotMatch(result.stdout, /ready/);
    } finally {
      holder.close();
      await store.drop();
    }
  });
});

for (const engine of ENGINES) {
  describe(`what a start logs, on ${engine.name}`, () => {
    let store: FreshStore;
    before(async () => {
      store = await freshStore(engine);
    });
    after(() => store.drop());

    async function start(env: Record<string, string> = {}) {
      const port = await freePort();
      const server = launch(['serve'], { ...store.env, PORT: String(port), LATCHKEY_PUBLIC_URL: 'https://auth.example.com', ...env });
      await server.waitFor(/latchkey ready/);
      // "ready" means listening: the port answers as soon as the line is out.
      assert.equal((await call(`http://127.0.0.1:${port}/health`)).status, 200);
      server.child.kill('SIGTERM');
      assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output());
      return { port, lines: jsonLines(server.stdout()), output: server.output() };
    }

    it('the first start says it created the schema and a signing key, with its kid; the next does not', async () => {
      const first = await start();
      const schema = first.lines.find((l) => /created the schema/.test(l.msg));
      assert.ok(schema, first.output);
      assert.match(schema.msg, engine.name === 'postgres' ? /^store: postgresql:\/\// : /^store: sqlite:/);
      const key = first.lines.find((l) => /created a signing key/.test(l.msg))!;
      assert.ok(key, first.output);
      // The kid logged is the one published.
      const port = await freePort();
      const again = launch(['serve'], { ...store.env, PORT: String(port) });
      try {
        await again.waitFor(/latchkey ready/);
        const jwks = await call(`http://127.0.0.1:${port}/.well-known/jwks.json`);
        assert.deepEqual(jwks.body.keys.map((k: { kid: string }) => k.kid), [key.kid]);
        assert.ok(!jsonLines(again.stdout()).some((l) => /created the schema|created a signing key/.test(l.msg)), again.output());
        assert.ok(jsonLines(again.stdout()).some((l) => /^store: /.test(l.msg)), 'every start names its store');
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    });

    it('every start names its store, mail, limits, public URL and each optional endpoint, on or off and why; ISO times; ready last', async () => {
      const off = await start();
      const messages = off.lines.map((l) => l.msg);
      for (const expected of [
        /^store: /,
        /^mail: written to the outbox folder .*LATCHKEY_SMTP_URL is not set/,
        /^limits: counted in the store \(REDIS_URL is not set\)/,
        /^admin API: off \(LATCHKEY_ADMIN_TOKEN is not set\)/,
        /^introspection: off \(LATCHKEY_INTROSPECTION_TOKEN is not set\)/,
        /^metrics: \/metrics is open .*LATCHKEY_METRICS_TOKEN is not set/,
        /^latchkey ready on http:\/\/127\.0\.0\.1:\d+; public URL https:\/\/auth\.example\.com$/,
      ]) {
        assert.ok(messages.some((m) => expected.test(m)), `${expected} not in:\n${messages.join('\n')}`);
      }
      for (const line of off.lines) assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // "ready" comes after the listening socket exists, never before.
      const ready = messages.findIndex((m) => /latchkey ready/.test(m));
      const listening = messages.findIndex((m) => /Server listening/.test(m));
      assert.ok(listening >= 0 && ready > listening, messages.join('\n'));

      const mailbox = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false });
      await new Promise<void>((resolve) => mailbox.listen(0, '127.0.0.1', resolve));
      const smtpPort = (mailbox.server.address() as AddressInfo).port;
      try {
        const on = await start({
          LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
          LATCHKEY_INTROSPECTION_TOKEN: 'introspection-token-0123456789-abcdef',
          LATCHKEY_METRICS_TOKEN: 'metrics-token-0123456789-abcdefghij',
          LATCHKEY_SMTP_URL: `smtp://mailer:smtp-password-secret@127.0.0.1:${smtpPort}`,
        });
        const onMessages = on.lines.map((l) => l.msg);
        for (const expected of [
          new RegExp(`^mail: sent by SMTP through smtp://127\\.0\\.0\\.1:${smtpPort}$`),
          /^admin API: on at \/admin/,
          /^introspection: on at \/introspect/,
          /^metrics: \/metrics needs LATCHKEY_METRICS_TOKEN/,
        ]) {
          assert.ok(onMessages.some((m) => expected.test(m)), `${expected} not in:\n${onMessages.join('\n')}`);
        }
        // The switches' secrets are never in the log.
        for (const secret of [ADMIN_TOKEN, 'introspection-token-0123456789', 'metrics-token-0123456789', 'smtp-password-secret']) {
          assert.ok(!on.output.includes(secret), `log holds ${secret.slice(0, 8)}…`);
        }
      } finally {
        await new Promise<void>((resolve) => mailbox.close(() => resolve()));
      }
    });
  });
}

describe('log formats', () => {
  let store: FreshStore;
  before(async () => {
    store = await freshStore({ name: 'sqlite' });
  });
  after(() => store.drop());

  it('LATCHKEY_LOG_FORMAT=pretty gives readable lines with ISO times; a bad format is a configuration error', async () => {
    const port = await freePort();
    const server = launch(['serve'], { ...store.env, PORT: String(port), LATCHKEY_LOG_FORMAT: 'pretty' });
    await server.waitFor(/latchkey ready/);
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output());
    const ready = server.stdout().split('\n').find((l) => l.includes('latchkey ready'))!;
    assert.match(ready, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] INFO: latchkey ready on http:\/\/127\.0\.0\.1:\d+/);
    assert.throws(() => JSON.parse(ready));

    const bad = await run(['serve'], { ...store.env, LATCHKEY_LOG_FORMAT: 'xml' });
    assert.equal(bad.code, 2);
    assertOneLine(bad.stderr, /LATCHKEY_LOG_FORMAT must be one of json, pretty/);
  });

  it('on a terminal, lines are pretty without being asked; LATCHKEY_LOG_FORMAT=json keeps JSON there', async () => {
    // `script` gives the server a real pseudo-terminal for stdout.
    const onTty = async (env: Record<string, string>) => {
      const port = await freePort();
      const command = `${process.execPath} --import tsx src/main.ts serve`;
      const child = spawn('script', ['-qefc', command, '/dev/null'], {
        cwd: ROOT,
        env: { ...process.env, ...store.env, PORT: String(port), ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      for (let i = 0; i < PATIENCE_MS / 100 && !out.includes('latchkey ready'); i++) await new Promise((r) => setTimeout(r, 100));
      const exited = new Promise((resolve) => child.once('close', resolve));
      // The server is the one node process under `script`; stop it by its port's owner.
      assert.equal((await call(`http://127.0.0.1:${port}/health`)).status, 200);
      child.kill('SIGTERM');
      await exited;
      return out.split(/\r?\n/).find((l) => l.includes('latchkey ready')) ?? out;
    };
    // eslint-disable-next-line no-control-regex
    const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
    assert.match(plain(await onTty({})), /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] INFO: latchkey ready/);
    assert.equal(JSON.parse(await onTty({ LATCHKEY_LOG_FORMAT: 'json' })).msg.startsWith('latchkey ready'), true);
  });
});

describe('stopping', () => {
  let store: FreshStore;
  before(async () => {
    store = await freshStore({ name: 'sqlite' });
  });
  after(() => store.drop());

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to the npm that \`npm start\` started stops the server, and nothing is left answering`, async () => {
      const port = await freePort();
      const npm = launch([], { ...store.env, PORT: String(port) }, { npm: true });
      await npm.waitFor(/latchkey ready/);
      assert.equal((await call(`http://127.0.0.1:${port}/health`)).status, 200);
      npm.child.kill(signal);
      const { code } = await npm.exited;
      assert.equal(code, 0, npm.output());
      assert.match(npm.output(), new RegExp(`${signal}: shutting down`));
      assert.match(npm.output(), /"msg":"stopped"/);
      await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), 'a server still answers after npm exited');
    });
  }

  it('a request in flight when SIGTERM arrives is answered before the exit', async () => {
    const port = await freePort();
    const server = launch(['serve'], { ...store.env, PORT: String(port), LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN });
    await server.waitFor(/latchkey ready/);
    // Headers and half a body: the request has begun, and cannot finish until we send the rest.
    const body = JSON.stringify({ username: 'nobody', password: 'not-the-password' });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /v1/login HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
    );
    await server.waitFor(/incoming request/);
    server.child.kill('SIGTERM');
    await server.waitFor(/SIGTERM: shutting down/);
    // write, not end: a half-closed request is one the client gave up on.
    socket.write(body.slice(10));
    await closed;
    assert.match(answer, /^HTTP\/1\.1 401 /, answer);
    assert.match(answer, /Incorrect username or password/);
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output());
  });

  it('mail queued when SIGTERM arrives is delivered before the exit', async () => {
    // An SMTP server that holds each message until the test lets it go.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let receiving!: () => void;
    const arrived = new Promise<void>((resolve) => (receiving = resolve));
    const delivered: string[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          receiving();
          void held.then(() => {
            delivered.push(session.envelope.rcptTo[0].address);
            callback();
          });
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = launch(['serve'], { ...store.env, PORT: String(port), LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN, LATCHKEY_SMTP_URL: smtpUrl });
    try {
      await server.waitFor(/latchkey ready/);
      await post(`${base}/admin/users`, { username: 'mia', email: 'mia@example.com', password: 'mia-password-1' }, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal((await post(`${base}/v1/forgot-password`, { username: 'mia' })).status, 204);
      await arrived;
      server.child.kill('SIGTERM');
      await server.waitFor(/SIGTERM: shutting down/);
      assert.deepEqual(delivered, []);
      release();
      assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output());
      assert.deepEqual(delivered, ['mia@example.com']);
    } finally {
      server.child.kill('SIGKILL');
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });

  it('mail that cannot be sent does not hold the exit past LATCHKEY_SHUTDOWN_TIMEOUT, and the log says what was left', async () => {
    // A mail server that accepts the connection and never says a word.
    const silent = net.createServer(() => {});
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    let connected!: () => void;
    const reached = new Promise<void>((resolve) => (connected = resolve));
    silent.on('connection', () => connected());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = launch(['serve'], {
      ...store.env,
      PORT: String(port),
      LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
      LATCHKEY_SMTP_URL: `smtp://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      LATCHKEY_SHUTDOWN_TIMEOUT: '1',
    });
    try {
      await server.waitFor(/latchkey ready/);
      await post(`${base}/admin/users`, { username: 'ned', email: 'ned@example.com', password: 'ned-password-1' }, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal((await post(`${base}/v1/forgot-password`, { username: 'ned' })).status, 204);
      await reached;
      server.child.kill('SIGTERM');
      const { code } = await server.exited;
      assert.equal(code, 1, server.output());
      assert.match(server.output(), /shutdown did not finish within 1 s \(LATCHKEY_SHUTDOWN_TIMEOUT\); exiting with 1 background job\(s\) unfinished/);
    } finally {
      server.child.kill('SIGKILL');
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });
});
