// Secrets at rest stay secret when the database leaks: codes are keyed hashes under a secret
// kept out of the database; the data directory and its files are owner-only at every start;
// operator tokens are long, compared without leaking their length, and guesses are throttled.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import postgres from 'postgres';
import SQLite from 'better-sqlite3';
import { ENGINES, startServer, freshStore, startMailbox, call, post, createUser, ADMIN_TOKEN, type TestServer, type FreshStore, type Mailbox } from './helpers.ts';
import { loadConfig, ConfigError } from '../src/platform/config.ts';

/** The one_time_codes rows, read straight from the database as a thief with a copy would. */
async function codeRows(env: Record<string, string>): Promise<{ id: string; purpose: string; code_hash: string }[]> {
  if (env.DATABASE_URL) {
    const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      return [...(await sql.unsafe('select id, purpose, code_hash from one_time_codes'))] as never;
    } finally {
      await sql.end();
    }
  }
  const db = new SQLite(path.join(env.LATCHKEY_DATA_DIR, 'latchkey.sqlite'), { readonly: true });
  try {
    return db.prepare('select id, purpose, code_hash from one_time_codes').all() as never;
  } finally {
    db.close();
  }
}

// Several reset mails go to one account from one address here; the mail caps are tested elsewhere.
const MAIL_BUDGET = { LATCHKEY_RESET_MAILS_PER_ACCOUNT_IP: '10', LATCHKEY_RESET_MAILS_PER_ACCOUNT: '10' };
const sha256 = (value: string) => crypto.createHash('sha256').update(value).digest('hex');
const mode = (file: string) => fs.statSync(file).mode & 0o777;

for (const engine of ENGINES) {
  describe(`secrets at rest on ${engine.name}`, () => {
    let mailbox: Mailbox;
    let store: FreshStore;
    let server: TestServer;
    before(async () => {
      mailbox = await startMailbox();
      store = await freshStore(engine);
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, ...MAIL_BUDGET }, store);
      await createUser(server, { username: 'vault', email: 'vault@example.com', password: 'vault-password' });
    });
    after(async () => {
      await server?.close();
      await store.drop();
      await mailbox.close();
    });

    it('a reset code cannot be brute-forced from its row without the secret', async () => {
      assert.equal((await post(`${server.url}/v1/forgot-password`, { username: 'vault' })).status, 204);
      const code = /(\d{6})/.exec((await mailbox.next('vault@example.com')).text ?? '')![1];
      const [row] = (await codeRows(store.env)).filter((r) => r.purpose === 'reset_code');
      assert.ok(row, 'the code has a row');
      assert.ok(!row.code_hash.includes(code));
      // Every unkeyed construction of every one of the 10^6 codes: none is the stored hash.
      const found: string[] = [];
      for (let n = 0; n < 1_000_000; n++) {
        const guess = String(n).padStart(6, '0');
        if (sha256(`${row.id}:${guess}`) === row.code_hash || sha256(guess) === row.code_hash || sha256(`reset_code:${guess}`) === row.code_hash) {
          found.push(guess);
        }
      }
      assert.deepEqual(found, [], 'the code is recoverable from the database alone');
      // The code itself still works.
      const confirmed = await post(`${server.url}/v1/forgot-password-confirm`, { username: 'vault', password: 'vault-new-password', confirmation_code: code });
      assert.equal(confirmed.status, 204, confirmed.text);
    });

    it('reset links and challenge sessions are not stored as plain SHA-256 either', async () => {
      await post(`${server.url}/api/password/request`, { email: 'vault@example.com' });
      const link = decodeURIComponent(/token=([\w%-]+)/.exec((await mailbox.next('vault@example.com')).text ?? '')![1]);
      await createUser(server, { username: 'tempo', email: 'tempo@example.com', temporary_password: 'tempo-temporary' });
      const challenge = (await post(`${server.url}/v1/login`, { username: 'tempo', password: 'tempo-temporary' })).body.session as string;
      const hashes = (await codeRows(store.env)).map((r) => r.code_hash);
      for (const [purpose, token] of [['reset_link', link], ['challenge', challenge]]) {
        assert.ok(!hashes.includes(sha256(`${purpose}:${token}`)), purpose);
        assert.ok(!hashes.includes(sha256(token)), purpose);
      }
      // Both still work.
      assert.equal((await call(`${server.url}/reset-password?token=${encodeURIComponent(link)}`)).status, 200);
      assert.equal((await post(`${server.url}/v1/new-password-required`, { session: challenge, username: 'tempo', new_password: 'tempo-own-password' })).status, 200);
    });

    it('the generated secret is an owner-only file that survives a restart, so codes outlive it', async () => {
      const secretFile = path.join(store.env.LATCHKEY_DATA_DIR, 'secret');
      assert.equal(mode(secretFile), 0o600);
      const before = fs.readFileSync(secretFile, 'utf8');
      assert.ok(before.trim().length >= 43, 'at least 256 bits');
      await post(`${server.url}/v1/forgot-password`, { username: 'vault' });
      const code = /(\d{6})/.exec((await mailbox.next('vault@example.com')).text ?? '')![1];
      await server.close();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, ...MAIL_BUDGET }, store);
      assert.equal(fs.readFileSync(secretFile, 'utf8'), before);
      const confirmed = await post(`${server.url}/v1/forgot-password-confirm`, { username: 'vault', password: 'vault-third-password', confirmation_code: code });
      assert.equal(confirmed.status, 204, confirmed.text);
    });

    it('an instance with another secret than the database was set up with refuses to start, naming LATCHKEY_SECRET', async () => {
      await assert.rejects(
        startServer(engine, { LATCHKEY_SECRET: 'a-different-secret-0123456789abcdefghij' }, store),
        (error: Error) => /LATCHKEY_SECRET/.test(error.message),
      );
    });

    it('guesses at the admin token are throttled per client IP; the right token from another IP still works', async () => {
      const proxied = await startServer(engine, { LATCHKEY_TRUST_PROXY: '1' }, store);
      try {
        const from = (ip: string, token: string) =>
          call(`${proxied.url}/admin/users/vault`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip } });
        for (let i = 0; i < 10; i++) {
          const wrong = await from('203.0.113.7', `wrong-admin-token-guess-${String(i).padStart(12, '0')}`);
          assert.equal(wrong.status, 401, `guess ${i}: ${wrong.text}`);
        }
        const throttled = await from('203.0.113.7', 'wrong-admin-token-guess-again-0123456789');
        assert.equal(throttled.status, 429);
        assert.equal(throttled.body.error, 'rate_limited');
        assert.ok(Number(throttled.headers.get('retry-after')) > 0);
        // The right token is compared first: a throttled address's guesses never lock its holder out.
        assert.equal((await from('203.0.113.7', ADMIN_TOKEN)).status, 200);
        assert.equal((await from('203.0.113.7', 'wrong-admin-token-guess-after-0123456789')).status, 429);
        assert.equal((await from('198.51.100.2', ADMIN_TOKEN)).status, 200);
        // A short guess, of another length than the token, is simply wrong.
        assert.equal((await from('198.51.100.3', 'x')).status, 401);
      } finally {
        await proxied.close();
      }
    });

    it('guesses at the introspection and metrics tokens are throttled too', async () => {
      const tokens = { LATCHKEY_INTROSPECTION_TOKEN: 'introspection-token-0123456789abcdef', LATCHKEY_METRICS_TOKEN: 'metrics-token-0123456789abcdefghijkl' };
      const proxied = await startServer(engine, { LATCHKEY_TRUST_PROXY: '1', ...tokens }, store);
      try {
        const introspect = (ip: string, token: string) =>
          call(`${proxied.url}/introspect`, { json: { token: 'x' }, headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip } });
        const metrics = (ip: string, token: string) => call(`${proxied.url}/metrics`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip } });
        for (let i = 0; i < 10; i++) assert.equal((await introspect('203.0.113.8', `guess-${i}`)).status, 401);
        const throttled = await introspect('203.0.113.8', 'guess-again');
        assert.equal(throttled.status, 429);
        assert.equal((await introspect('203.0.113.8', tokens.LATCHKEY_INTROSPECTION_TOKEN)).status, 200);
        assert.equal(typeof throttled.body.error, 'string');
        assert.equal((await introspect('198.51.100.4', tokens.LATCHKEY_INTROSPECTION_TOKEN)).status, 200);
        for (let i = 0; i < 10; i++) assert.equal((await metrics('203.0.113.9', `guess-${i}`)).status, 401);
        assert.equal((await metrics('203.0.113.9', 'guess-again')).status, 429);
        assert.equal((await metrics('203.0.113.9', tokens.LATCHKEY_METRICS_TOKEN)).status, 200);
        assert.equal((await metrics('198.51.100.5', tokens.LATCHKEY_METRICS_TOKEN)).status, 200);
      } finally {
        await proxied.close();
      }
    });
  });

  describe(`the data directory is owner-only at every start, on ${engine.name}`, () => {
    it('tightens a pre-existing 0755 directory and 0644 files', async () => {
      const store = await freshStore(engine);
      const dir = store.env.LATCHKEY_DATA_DIR;
      try {
        // A first start makes the files; then an operator (or a restore) loosens everything.
        let server = await startServer(engine, { LATCHKEY_SMTP_URL: '' }, store);
        await createUser(server, { username: 'modes', email: 'modes@example.com', password: 'modes-password' });
        await post(`${server.url}/v1/forgot-password`, { username: 'modes' });
        await server.core.background.drain();
        await server.close();
        const outbox = path.join(dir, 'outbox');
        assert.ok(fs.readdirSync(outbox).length > 0, 'a mail in the outbox');
        fs.chmodSync(dir, 0o755);
        fs.chmodSync(outbox, 0o755);
        const files = [
          ...fs.readdirSync(dir).filter((f) => f !== 'outbox').map((f) => path.join(dir, f)),
          ...fs.readdirSync(outbox).map((f) => path.join(outbox, f)),
        ];
        for (const file of files) fs.chmodSync(file, 0o644);
        assert.ok(files.some((f) => f.endsWith('secret')));
        if (engine.name === 'sqlite') assert.ok(files.some((f) => f.endsWith('latchkey.sqlite')));

        server = await startServer(engine, {}, store);
        try {
          assert.equal(mode(dir), 0o700);
          assert.equal(mode(outbox), 0o700);
          for (const file of files) assert.equal(mode(file), 0o600, file);
          if (engine.name === 'sqlite') {
            for (const suffix of ['', '-wal', '-shm']) {
              const file = path.join(dir, `latchkey.sqlite${suffix}`);
              assert.ok(fs.existsSync(file), file);
              assert.equal(mode(file), 0o600, file);
            }
          }
        } finally {
          await server.close();
        }
      } finally {
        await store.drop();
      }
    });
  });
}

describe('operator tokens and the secret are long enough', () => {
  it('refuses tokens and secrets shorter than 32 characters, naming the variable', () => {
    for (const name of ['LATCHKEY_ADMIN_TOKEN', 'LATCHKEY_INTROSPECTION_TOKEN', 'LATCHKEY_METRICS_TOKEN', 'LATCHKEY_SECRET']) {
      assert.throws(
        () => loadConfig({ [name]: 'x'.repeat(31) }),
        (error: unknown) => error instanceof ConfigError && new RegExp(`${name} must be at least 32 characters`).test(error.message),
        name,
      );
      assert.doesNotThrow(() => loadConfig({ [name]: '0123456789abcdefghijklmnopqrstuv' }), name);
    }
  });
});
