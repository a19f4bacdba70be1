// No secret in the clear: not in the store, not in the logs, not in error bodies. Runs the
// real `npm start` entry point as a process, so its logs are what an operator would see.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import { simpleParser } from 'mailparser';
import { ENGINES, freshStore, freePort, post, call, type FreshStore } from './helpers.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const ADMIN = 'secret-test-admin-token-0123456789abcdef';
const KEY_SECRET = 'key-encryption-secret-for-tests-0123456789';

/** Every value in every table, as text. */
async function dumpStore(env: Record<string, string>): Promise<string> {
  const tables = ['users', 'sessions', 'one_time_codes', 'signing_keys', 'audit_events'];
  if (env.DATABASE_URL) {
    const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      const rows = await Promise.all(tables.map((t) => sql.unsafe(`select * from ${t}`)));
      return JSON.stringify(rows);
    } finally {
      await sql.end();
    }
  }
  const db = new SQLite(path.join(env.LATCHKEY_DATA_DIR, 'latchkey.sqlite'), { readonly: true });
  try {
    return JSON.stringify(tables.map((t) => db.prepare(`select * from ${t}`).all()));
  } finally {
    db.close();
  }
}

for (const engine of ENGINES) {
  describe(`secrets stay secret, with the real server process, on ${engine.name}`, () => {
    let store: FreshStore;
    let child: ChildProcess;
    let output = '';
    const outputGrew = new EventEmitter();
    /** Waits, without a fixed bound, until the server's output holds `pattern` `times` times. */
    async function logged(pattern: RegExp, times = 1) {
      const count = () => output.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
      while (count() < times) await once(outputGrew, 'data');
    }
    let base: string;
    const secrets: string[] = [];

    /** Walks every flow that handles a secret, keeping each secret it meets. */
    async function walkEveryFlow() {
      const admin = { authorization: `Bearer ${ADMIN}` };
      const password = 'Pa55word-one-of-a-kind';
      secrets.push(password, ADMIN, KEY_SECRET);
      assert.equal((await post(`${base}/admin/users`, { username: 'sam', email: 'sam@example.com', password }, admin)).status, 201);
      const temporary = 'Temporary-one-of-a-kind';
      secrets.push(temporary);
      await post(`${base}/admin/users`, { username: 'tim', email: 'tim@example.com', temporary_password: temporary }, admin);

      const login = await post(`${base}/v1/login`, { username: 'sam', password });
      secrets.push(login.body.refresh_token, login.body.access_token);
      const wrongPassword = 'Wrong-password-one-of-a-kind';
      secrets.push(wrongPassword);
      const failed = await post(`${base}/v1/login`, { username: 'sam', password: wrongPassword });
      assert.ok(!failed.text.includes(wrongPassword));

      const challenge = await post(`${base}/v1/login`, { username: 'tim', password: temporary });
      secrets.push(challenge.body.session);
      const timPassword = 'Tims-new-one-of-a-kind';
      secrets.push(timPassword);
      assert.equal((await post(`${base}/v1/new-password-required`, { session: challenge.body.session, username: 'tim', new_password: timPassword })).status, 200);

      // No SMTP: the code lands in the outbox folder, and the log says so once the file is whole
      // (polling the folder read a file still being written).
      assert.equal((await post(`${base}/v1/forgot-password`, { username: 'sam' })).status, 204);
      const outbox = path.join(store.env.LATCHKEY_DATA_DIR, 'outbox');
      await logged(/mail written to the outbox/, 1);
      const files = fs.readdirSync(outbox);
      assert.equal(files.length, 1);
      const mail = await simpleParser(fs.readFileSync(path.join(outbox, files[0])));
      assert.equal(mail.to && !Array.isArray(mail.to) ? mail.to.text : '', 'sam@example.com');
      const code = /Confirmation code: (\d{6})/.exec(mail.text!)![1];
      secrets.push(code);

      const newPassword = 'Reset-password-one-of-a-kind';
      secrets.push(newPassword);
      const confirmed = await post(`${base}/v1/forgot-password-confirm`, { username: 'sam', password: newPassword, confirmation_code: code });
      assert.equal(confirmed.status, 204);

      await post(`${base}/api/password/request`, { email: 'sam@example.com' });
      await logged(/mail written to the outbox/, 2);
      const mails = await Promise.all(fs.readdirSync(outbox).map((f) => simpleParser(fs.readFileSync(path.join(outbox, f)))));
      const linkMail = mails.find((m) => m.text?.includes('reset-password?token='))!;
      const linkToken = decodeURIComponent(/reset-password\?token=([\w%-]+)/.exec(linkMail.text!)![1]);
      secrets.push(linkToken);
      const page = await call(`${base}/reset-password?token=${encodeURIComponent(linkToken)}`);
      assert.equal(page.status, 200);
      const tooShort = await call(`${base}/reset-password`, {
        body: new URLSearchParams({ token: linkToken, password: 'x', password_confirm: 'x' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(tooShort.status, 422);
    }

    // The walk is part of the setup, so each check below has the secrets to look for, run alone or not.
    before(async () => {
      store = await freshStore(engine);
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
        cwd: ROOT,
        env: {
          ...process.env,
          ...store.env,
          PORT: String(port),
          LOG_LEVEL: 'debug',
          LATCHKEY_ADMIN_TOKEN: ADMIN,
          LATCHKEY_KEY_SECRET: KEY_SECRET,
          LATCHKEY_SMTP_URL: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Up when it says it listens, or failed when it exits first: no fixed wait, which a busy
      // machine overran (the process took over 10 s to start in a full run).
      const seen = (d: Buffer) => {
        output += d;
        outputGrew.emit('data');
      };
      child.stdout!.on('data', seen);
      child.stderr!.on('data', seen);
      const exited = once(child, 'exit').then(([code]) => {
        throw new Error(`the server exited with ${code} before listening:\n${output}`);
      });
      await Promise.race([logged(/Server listening/), exited]);
      exited.catch(() => {}); // it exits at the end, on purpose
      await walkEveryFlow();
    }, { timeout: 180_000 }); // only so a server that never comes up fails the run instead of hanging it
    after(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await store.drop();
    });

    it('the walk met every kind of secret', () => {
      // Passwords (set, temporary, wrong, new x3), the admin token, the key secret, a refresh and an
      // access token, a challenge session, a reset code and a reset link token.
      assert.equal(secrets.length, 12);
      assert.ok(secrets.every((secret) => typeof secret === 'string' && secret.length >= 6), 'each is a real value');
    });

    it('the store holds none of them in the clear, and private keys are sealed', async () => {
      assert.equal(secrets.length, 12);
      const dump = await dumpStore(store.env);
      for (const secret of secrets) assert.ok(!dump.includes(secret), `store holds a secret: ${secret.slice(0, 4)}…`);
      assert.ok(!dump.includes('PRIVATE KEY'), 'an unsealed private key is in the store');
      assert.match(dump, /enc:v1:/);
    });

    it('the logs hold none of them', () => {
      assert.equal(secrets.length, 12);
      assert.ok(output.length > 1000, 'the server logged its requests');
      for (const secret of secrets) assert.ok(!output.includes(secret), `log holds a secret: ${secret.slice(0, 4)}…`);
    });

    it('stops cleanly on SIGTERM', async () => {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    });
  });
}
