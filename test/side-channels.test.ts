// Invariant 12, nothing secret in a side channel: configured URLs' credentials stay out of the log
// and start-up errors (and reach the old service as a header, not in the URL), a weak
// LATCHKEY_KEY_SECRET is refused, files holding secrets are made owner-only and never reused,
// the terminal never gets a control character a file or a user chose, and a production start
// with everything secret in the data directory says so.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { loadConfig, ConfigError } from '../src/platform/config.ts';
import { openServices, logSwitches } from '../src/app/app.ts';
import { OldService } from '../src/upstream/old-service.ts';
import { redactUrl } from '../src/platform/redact.ts';
import { instanceSecret } from '../src/platform/data-dir.ts';
import { createUser as createStoredUser } from '../src/core/credentials.ts';
import { ENGINES, freshStore, freePort, startMailbox, type Engine } from './helpers.ts';
import { launch, runToEnd } from './processes.ts';

const run = runToEnd;

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

/** A URL with a user and password (percent-encoded as a URL carries them). */
function withCredentials(raw: string, user: string, password: string): string {
  const url = new URL(raw);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  return url.href.replace(/\/$/, '');
}

describe('redactUrl', () => {
  it('drops the user and password, and the value of every password-like query parameter', () => {
    assert.equal(redactUrl('postgres://app:S3cret@db.example.com:5432/latchkey?sslmode=require&password=Q5ecret'), 'postgres://db.example.com:5432/latchkey?sslmode=require&password=***');
    assert.equal(redactUrl('roypi+http://svc:S3cret@old.example.com/api'), 'roypi+http://old.example.com/api');
    assert.equal(redactUrl('redis://:S3cret@127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactUrl('smtp://mailer:S3cret@mail.example.com:587?api_key=K3y&token=T0k'), 'smtp://mail.example.com:587?api_key=***&token=***');
    assert.equal(redactUrl('not a url S3cret'), '(a URL that cannot be parsed)');
  });
});

for (const engine of ENGINES) {
  describe(`configured URLs' credentials on ${engine.name}`, () => {
    it('never reach the log of a server start nor of a CLI command: DATABASE_URL, REDIS_URL, LATCHKEY_SMTP_URL, LATCHKEY_MIGRATE_FROM', async () => {
      const store = await freshStore(engine);
      const mailbox = await startMailbox();
      const secrets = ['S3cretOldSvc', 'S3cretRedis', 'S3cretSmtp', ...(engine.name === 'postgres' ? ['S3cretDb'] : [])];
      const env: Record<string, string> = {
        ...store.env,
        PORT: String(await freePort()),
        LOG_LEVEL: 'debug',
        LATCHKEY_LOG_FORMAT: 'json',
        LATCHKEY_MIGRATE_FROM: `roypi+${withCredentials('http://127.0.0.1:9/old', 'svc', 'S3cretOldSvc')}`,
        REDIS_URL: withCredentials('redis://127.0.0.1:6379', '', 'S3cretRedis'),
        LATCHKEY_SMTP_URL: withCredentials(mailbox.url, 'mailer', 'S3cretSmtp'),
        // PostgreSQL here trusts local connections: any password connects, and must not show.
        ...(engine.name === 'postgres' ? { DATABASE_URL: withCredentials(store.env.DATABASE_URL, 'postgres', 'S3cretDb') } : {}),
      };
      try {
        const server = launch(['serve'], env);
        await server.waitFor(/latchkey ready/);
        server.child.kill('SIGTERM');
        await server.exited;
        assert.match(server.output(), /migrated from the old service/);
        assert.match(server.output(), /roypi\+http:\/\/127\.0\.0\.1:9\/old/, 'the old service is still named');
        for (const args of [['users', 'list'], ['migrate'], ['keys', 'list']]) {
          const cli = await run(args, env);
          assert.equal(cli.code, 0, cli.output);
          for (const secret of secrets) assert.ok(!cli.output.includes(secret), `${args.join(' ')} printed ${secret}:\n${cli.output}`);
        }
        for (const secret of secrets) assert.ok(!server.output().includes(secret), `the server logged ${secret}:\n${server.output()}`);
      } finally {
        await mailbox.close();
        await store.drop();
      }
    });
  });
}

describe('URLs the world sees', () => {
  it('LATCHKEY_PUBLIC_URL and LATCHKEY_ISSUER with credentials are refused, naming the variable and not the password: they would be published in every mail link, discovery document and token', () => {
    for (const name of ['LATCHKEY_PUBLIC_URL', 'LATCHKEY_ISSUER']) {
      assert.throws(
        () => loadConfig({ [name]: 'https://ops:S3cretPub@auth.example.com' }),
        (error: unknown) => error instanceof ConfigError && error.message.startsWith(`${name} `) && !error.message.includes('S3cretPub'),
        name,
      );
      assert.doesNotThrow(() => loadConfig({ [name]: 'https://auth.example.com/' }), name);
    }
  });
});

describe("configured URLs' credentials in start-up errors", () => {
  it('a PostgreSQL that is not there, or a database that does not exist: the one line names the setting, not the password', async () => {
    const closed = await freePort();
    const cases = [`postgres://app:S3cretDown@127.0.0.1:${closed}/latchkey?password=S3cretQuery`];
    if (process.env.TEST_DATABASE_URL) {
      const url = new URL(process.env.TEST_DATABASE_URL);
      url.pathname = `/latchkey_absent_${crypto.randomBytes(4).toString('hex')}`;
      cases.push(withCredentials(url.href, url.username || 'postgres', 'S3cretMissing'));
    }
    for (const DATABASE_URL of cases) {
      for (const args of [['serve'], ['users', 'list']]) {
        const result = await run(args, { DATABASE_URL, PORT: String(await freePort()), LATCHKEY_LOG_FORMAT: 'json' });
        assert.equal(result.code, 1, result.output);
        assert.match(result.stderr, /DATABASE_URL/);
        assert.doesNotMatch(result.output, /S3cret/, result.output);
      }
    }
  });
});

describe('LATCHKEY_MIGRATE_FROM with credentials', () => {
  it('sends them as Authorization: Basic to the old service, never in the URL, and the login is confirmed', async () => {
    const seen: { url?: string; authorization?: string }[] = [];
    const old = http.createServer((request, response) => {
      seen.push({ url: request.url, authorization: request.headers.authorization });
      request.resume();
      const claims = Buffer.from(JSON.stringify({ username: 'Alice' })).toString('base64url');
      const ok = request.headers.authorization === `Basic ${Buffer.from('svc:S3cret@:x').toString('base64')}`;
      response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      response.end(ok ? JSON.stringify({ access_token: `e30.${claims}.sig` }) : '{"detail":"no"}');
    });
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    const { port } = old.address() as AddressInfo;
    try {
      const { migrateFrom } = loadConfig({ LATCHKEY_MIGRATE_FROM: `roypi+http://svc:S3cret%40%3Ax@127.0.0.1:${port}/base/` });
      const service = new OldService(migrateFrom!);
      assert.deepEqual(await service.login('Alice', 'her-password'), { username: 'Alice', email: undefined });
      assert.deepEqual(seen, [{ url: '/base/auth/access_token/', authorization: `Basic ${Buffer.from('svc:S3cret@:x').toString('base64')}` }]);
      assert.equal(service.describe, `roypi+http://127.0.0.1:${port}/base`);
      // A % that is no escape stands for itself, rather than failing the start with a stack trace.
      assert.equal(new OldService({ ...migrateFrom!, url: `http://svc:50%zz@127.0.0.1:${port}` }).describe, `roypi+http://127.0.0.1:${port}`);
    } finally {
      await new Promise((resolve) => old.close(resolve));
    }
  });
});

describe('LATCHKEY_KEY_SECRET strength', () => {
  it('refuses a short or repetitive secret, naming the variable; accepts what openssl rand gives', () => {
    for (const weak of ['a', 'short-secret', 'a'.repeat(64), 'abab'.repeat(10), '0123456789abcdefghijklmnopqrstu']) {
      assert.throws(
        () => loadConfig({ LATCHKEY_KEY_SECRET: weak }),
        (error: unknown) => error instanceof ConfigError && /^LATCHKEY_KEY_SECRET must be at least 32 characters, at least 8 of them different/.test(error.message),
        weak,
      );
    }
    for (const strong of [crypto.randomBytes(16).toString('hex'), crypto.randomBytes(32).toString('base64'), crypto.randomBytes(32).toString('base64url')]) {
      assert.equal(loadConfig({ LATCHKEY_KEY_SECRET: strong }).keySecret, strong);
    }
    assert.equal(loadConfig({ LATCHKEY_KEY_SECRET: '' }).keySecret, undefined);
  });

  it('serve and the CLI with a weak one exit 2 with one line naming it, before opening anything', async () => {
    const store = await freshStore({ name: 'sqlite' });
    try {
      for (const args of [['serve'], ['users', 'list']]) {
        const result = await run(args, { ...store.env, PORT: String(await freePort()), LATCHKEY_KEY_SECRET: 'a' });
        assert.equal(result.code, 2, result.output);
        assert.deepEqual(result.stderr.trim().split('\n').length, 1, result.stderr);
        assert.match(result.stderr, /^latchkey: configuration error: LATCHKEY_KEY_SECRET must be at least 32 characters/);
        assert.ok(!result.output.includes(': a\n') && !/"a"/.test(result.output), 'the weak secret is not echoed');
      }
    } finally {
      await store.drop();
    }
  });
});

describe('files that hold secrets are owner-only and new', () => {
  it('users export --with-hashes --output F: F is created 0600, and an existing F is refused and left as it was', async () => {
    const store = await freshStore({ name: 'sqlite' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-export-'));
    try {
      const created = await run(['users', 'create', 'alice', '--email', 'alice@example.com', '--password', 'alice-password'], store.env);
      assert.equal(created.code, 0, created.output);
      const fresh = path.join(dir, 'fresh.jsonl');
      const first = await run(['users', 'export', '--with-hashes', '--output', fresh], store.env);
      assert.equal(first.code, 0, first.output);
      assert.equal(modeOf(fresh), 0o600);
      assert.match(fs.readFileSync(fresh, 'utf8'), /\$argon2id\$/);

      const existing = path.join(dir, 'existing.jsonl');
      fs.writeFileSync(existing, 'keep me\n', { mode: 0o644 });
      fs.chmodSync(existing, 0o644);
      const second = await run(['users', 'export', '--with-hashes', '--output', existing], store.env);
      assert.equal(second.code, 1, second.output);
      assert.match(second.stderr, /^latchkey: --output .*existing\.jsonl exists already/m);
      assert.equal(fs.readFileSync(existing, 'utf8'), 'keep me\n');
      assert.equal(modeOf(existing), 0o644);

      // A link planted where the export goes is not followed.
      const target = path.join(dir, 'target');
      fs.writeFileSync(target, '');
      const link = path.join(dir, 'link.jsonl');
      fs.symlinkSync(target, link);
      assert.equal((await run(['users', 'export', '--with-hashes', '--output', link], store.env)).code, 1);
      assert.equal(fs.readFileSync(target, 'utf8'), '');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await store.drop();
    }
  });

  it("users import's rejects file is made anew, owner-only, even where a world-readable one was", async () => {
    const store = await freshStore({ name: 'sqlite' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-rejects-'));
    try {
      const file = path.join(dir, 'users.jsonl');
      fs.writeFileSync(file, '{"username":"bob","password_hash":"not-a-hash"}\n');
      const rejects = `${file}.rejects.jsonl`;
      fs.writeFileSync(rejects, 'old\n');
      fs.chmodSync(rejects, 0o644);
      const result = await run(['users', 'import', file], store.env);
      assert.equal(result.code, 0, result.output);
      assert.equal(modeOf(rejects), 0o600);
      assert.match(fs.readFileSync(rejects, 'utf8'), /"line":1/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await store.drop();
    }
  });

  it('the generated secret and the data directory are owner-only, whatever the umask', () => {
    const dataDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-secret-')), 'data');
    const umask = process.umask(0o022);
    try {
      instanceSecret(dataDir, undefined);
      assert.equal(modeOf(dataDir), 0o700);
      assert.equal(modeOf(path.join(dataDir, 'secret')), 0o600);
    } finally {
      process.umask(umask);
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});

/** Raw bytes a terminal would act on: C0 (but newline), DEL, C1, bidi controls. */
const TERMINAL_CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe('the terminal gets no control character from a file or a user', () => {
  it("an import file's header with an OSC escape: the error shows it escaped", async () => {
    const store = await freshStore({ name: 'sqlite' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-osc-'));
    try {
      const file = path.join(dir, 'users.csv');
      fs.writeFileSync(file, 'username,\x1b]0;pwned\x07\u009b31m\u202eevil\nalice,x\n');
      const result = await run(['users', 'import', file], store.env);
      assert.equal(result.code, 1, result.output);
      assert.doesNotMatch(result.output, TERMINAL_CONTROLS);
      assert.match(result.stderr, /unknown column: \\u001b\]0;pwned\\u0007\\u009b31m\\u202eevil/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await store.drop();
    }
  });

  it('usage errors that echo an argument, and refusals that echo a name', async () => {
    const store = await freshStore({ name: 'sqlite' });
    try {
      for (const args of [['users', 'list', '--\x1b]52;c;cHduZWQ=\x07'], ['users', 'get', 'x\u009b2J\u202e'], ['users', 'import', '/nonexistent/\x1b[2J.csv']]) {
        const result = await run(args, store.env);
        assert.notEqual(result.code, 0, result.output);
        assert.doesNotMatch(result.output, TERMINAL_CONTROLS, JSON.stringify(result.output));
      }
    } finally {
      await store.drop();
    }
  });

  it('users list and users export show a stored name with controls escaped, as the same JSON', async () => {
    const store = await freshStore({ name: 'sqlite' });
    const evil = 'ev\u009b2Jil\u202egnp.exe\u007f';
    try {
      // A name stored before creation refused such characters.
      const config = loadConfig({ ...store.env, LOG_LEVEL: 'silent' });
      const services = await openServices(config, pino({ level: 'silent' }) as never);
      const now = Date.now();
      await createStoredUser(services.store, {
        username: evil, email: null, password_hash: null, status: 'active', managed_by: 'external',
        created_at: now, updated_at: now, password_changed_at: null,
      });
      await services.close();
      const listed = await run(['users', 'list'], store.env);
      assert.equal(listed.code, 0, listed.output);
      assert.doesNotMatch(listed.stdout, TERMINAL_CONTROLS, JSON.stringify(listed.stdout));
      assert.deepEqual(JSON.parse(listed.stdout).map((u: { username: string }) => u.username), [evil]);
      const exported = await run(['users', 'export'], store.env);
      assert.equal(exported.code, 0, exported.output);
      assert.doesNotMatch(exported.stdout, TERMINAL_CONTROLS, JSON.stringify(exported.stdout));
      assert.equal(JSON.parse(exported.stdout).username, evil);
    } finally {
      await store.drop();
    }
  });
});

/** The start's log lines, as pino writes them. */
async function startLines(env: Record<string, string>, engine: Engine = { name: 'sqlite' }) {
  const store = await freshStore(engine);
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  try {
    const config = loadConfig({ ...store.env, ...env });
    const log = pino({ level: 'info' }, sink);
    const services = await openServices(config, log as never);
    logSwitches(log as never, config, services.mailer);
    await services.close();
    return lines;
  } finally {
    await store.drop();
  }
}

const PRODUCTION_WARNING = /NODE_ENV=production, but the secret .* is the generated file .*LATCHKEY_SECRET is unset.*unsealed \(LATCHKEY_KEY_SECRET is unset\)/;

describe('a production start with every secret in the data directory', () => {
  it('warns once, at warn level, when NODE_ENV=production, LATCHKEY_SECRET is unset and the keys are unsealed', async () => {
    const lines = await startLines({ NODE_ENV: 'production' });
    const warnings = lines.filter((line) => PRODUCTION_WARNING.test(line.msg));
    assert.equal(warnings.length, 1, JSON.stringify(lines, null, 1));
    assert.equal(warnings[0].level, 40);
  });

  it('is silent when not production, or when either secret is set', async () => {
    const secret = crypto.randomBytes(32).toString('base64url');
    for (const env of <Record<string, string>[]>[{}, { NODE_ENV: 'development' }, { NODE_ENV: 'production', LATCHKEY_SECRET: secret }, { NODE_ENV: 'production', LATCHKEY_KEY_SECRET: secret }]) {
      const lines = await startLines(env);
      assert.ok(lines.length > 0, 'the start logged');
      assert.equal(lines.filter((line) => /NODE_ENV=production/.test(line.msg)).length, 0, JSON.stringify(env));
    }
  });

  it('the real server process says it once in its log', async () => {
    const store = await freshStore({ name: 'sqlite' });
    try {
      const server = launch(['serve'], { ...store.env, PORT: String(await freePort()), NODE_ENV: 'production', LATCHKEY_LOG_FORMAT: 'json' });
      await server.waitFor(/latchkey ready/);
      server.child.kill('SIGTERM');
      await server.exited;
      const warnings = server.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => PRODUCTION_WARNING.test(l.msg));
      assert.equal(warnings.length, 1, server.output());
      assert.equal(warnings[0].level, 40);
    } finally {
      await store.drop();
    }
  });
});
