// Real parts for tests: a started server on a real store (a fresh SQLite file, or a fresh
// PostgreSQL database), a real SMTP server, and plain HTTP.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { loadConfig, type Config } from '../src/platform/config.ts';
import { buildApp } from '../src/app/app.ts';
import type { Core } from '../src/core/index.ts';
import { freshPostgres } from './databases.ts';
import { freePort } from './processes.ts';

export interface Engine {
  name: 'sqlite' | 'postgres';
}

/** Whether this run is CI's (CI=true): there, a service a suite needs is required, never skipped. */
export const UNDER_CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

/**
 * The skip reason for a suite whose service is missing, on a developer's machine. Under CI a
 * missing service fails the run instead: a skipped suite there would pass unseen.
 */
export function needs(what: string, available: boolean): string | false {
  if (available) return false;
  if (UNDER_CI) throw new Error(`CI=true but ${what}: this suite must run in CI, not be skipped`);
  return `${what} (skipped outside CI only)`;
}

/** SQLite always; PostgreSQL when TEST_DATABASE_URL is set (CI sets it, and must). */
export const ENGINES: Engine[] = [
  { name: 'sqlite' },
  ...(needs('TEST_DATABASE_URL is not set', !!process.env.TEST_DATABASE_URL) === false ? [{ name: 'postgres' as const }] : []),
];

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdefghijkl';

export class TestClock {
  offsetMs = 0;
  /** While frozen, the real time it was frozen at; the server's time then moves only by advance(). */
  private frozenAt?: number;
  readonly now = () => (this.frozenAt ?? Date.now()) + this.offsetMs;
  advance(seconds: number) {
    this.offsetMs += seconds * 1000;
  }
  /**
   * Stops the server's time, so "a second before the end" stays a second before however long the
   * test's own requests take (a slow machine otherwise eats a one-second margin).
   */
  freeze() {
    this.frozenAt ??= Date.now();
  }
  /** Real time again, and no offset. */
  reset() {
    this.frozenAt = undefined;
    this.offsetMs = 0;
  }
}

/** A fresh, empty place to keep data: a temp folder, plus a new database on PostgreSQL. */
export async function freshStore(engine: Engine): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-test-'));
  const env: Record<string, string> = { LATCHKEY_DATA_DIR: dataDir };
  let dropDb = async () => {};
  if (engine.name === 'postgres') {
    const database = await freshPostgres(process.env.TEST_DATABASE_URL!);
    env.DATABASE_URL = database.url;
    dropDb = database.drop;
  }
  return {
    env,
    async drop() {
      await dropDb();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestServer {
  url: string;
  core: Core;
  config: Config;
  clock: TestClock;
  close(): Promise<void>;
}

export { freePort };

export type FreshStore = Awaited<ReturnType<typeof freshStore>>;

/** Starts Latchkey on a fresh store, or on `shared` (which the caller then drops). */
export async function startServer(engine: Engine, env: Record<string, string> = {}, shared?: FreshStore): Promise<TestServer> {
  const store = shared ?? (await freshStore(engine));
  const clock = new TestClock();
  const config = loadConfig({
    // A known port, so the default public URL (links in mail) points at this very server.
    PORT: String(await freePort()),
    LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
    LATCHKEY_IP_RATE_LIMIT: '100000',
    LOG_LEVEL: 'silent',
    ...store.env,
    ...env,
  });
  const { app, core } = await buildApp(config, { clock: clock.now });
  await app.listen({ port: config.port, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${config.port}`,
    core,
    config,
    clock,
    async close() {
      await app.close();
      if (!shared) await store.drop();
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** POSTs JSON (or any body, with the content type given) and reads the answer. */
export async function call(
  url: string,
  options: { method?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

export const post = (url: string, json: unknown, headers?: Record<string, string>) => call(url, { json, headers });

export function decodeJwt(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

export interface Mailbox {
  url: string;
  messages: ParsedMail[];
  /** Delivery attempts seen (each DATA command), accepted or not. */
  attempts: number;
  /** Resolves with the next message to `to` (already received ones count). */
  next(to: string, timeoutMs?: number): Promise<ParsedMail>;
  /** Holds every delivery at DATA until the returned function is called. */
  hold(): () => void;
  close(): Promise<void>;
}

export interface MailboxOptions {
  /**
   * Decides each delivery attempt (counted from 1): an error refuses it with its SMTP reply
   * code (`responseCode`, 451 when unset), as a failing mail server would.
   */
  refuse?: (attempt: number) => (Error & { responseCode?: number }) | undefined;
}

/** A real SMTP server on loopback that keeps what it receives. */
export async function startMailbox(options: MailboxOptions = {}): Promise<Mailbox> {
  const messages: ParsedMail[] = [];
  const taken = new Set<ParsedMail>();
  const waiters: (() => void)[] = [];
  let held: Promise<void> | undefined;
  let attempts = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      const attempt = ++attempts;
      simpleParser(stream)
        .then(async (mail) => {
          await held;
          const refusal = options.refuse?.(attempt);
          if (refusal) {
            refusal.responseCode ??= 451;
            return callback(refusal);
          }
          messages.push(mail);
          waiters.splice(0).forEach((wake) => wake());
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  const recipient = (mail: ParsedMail) => {
    const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
    return to?.value[0]?.address?.toLowerCase();
  };
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    get attempts() {
      return attempts;
    },
    async next(to, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find((m) => !taken.has(m) && recipient(m) === to.toLowerCase());
        if (found) {
          taken.add(found);
          return found;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no mail to ${to} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    hold() {
      let release!: () => void;
      held = new Promise<void>((resolve) => (release = resolve));
      return () => {
        held = undefined;
        release();
      };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Creates a user through the admin API, as an operator would. */
export async function createUser(server: TestServer, user: Record<string, unknown>) {
  const reply = await post(`${server.url}/admin/users`, user, { authorization: `Bearer ${ADMIN_TOKEN}` });
  if (reply.status !== 201) throw new Error(`creating ${JSON.stringify(user.username)}: ${reply.status} ${reply.text}`);
  return reply.body as { id: number; username: string; email: string };
}

export interface StoredHashUser {
  username: string;
  /** A stored hash in any format the import reads; null: no password here (an external user). */
  password_hash: string | null;
  /** Default `<username>@example.com`; null for none. */
  email?: string | null;
  /**
   * Put the row in as an older release (or a restored backup) left it, past today's import checks:
   * a hash over LATCHKEY_FOREIGN_HASH_MAX_COST, an awaiting user without the name the old service
   * knows. Through the core's one create operation, never a raw store write.
   */
  asLeftByAnOlderRelease?: boolean;
}

/**
 * A user whose password is a stored (usually foreign) hash, as an operator makes one: a row of
 * the admin import (POST /admin/users/import). Answers the user as stored.
 */
export async function userWithStoredHash(server: TestServer, row: StoredHashUser) {
  const email = row.email === undefined ? `${row.username}@example.com` : row.email;
  if (row.asLeftByAnOlderRelease) {
    const { createUser: createThroughCore } = await import('../src/core/credentials.ts');
    const now = server.core.clock();
    return createThroughCore(server.core.store, {
      username: row.username,
      email,
      password_hash: row.password_hash,
      status: 'active',
      managed_by: row.password_hash === null ? 'external' : 'local',
      created_at: now,
      updated_at: now,
      password_changed_at: row.password_hash === null ? null : now,
    });
  }
  const line = JSON.stringify({ username: row.username, email, password_hash: row.password_hash });
  const reply = await call(`${server.url}/admin/users/import`, {
    body: line,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/x-ndjson' },
  });
  if (reply.status !== 200 || reply.body.imported !== 1) throw new Error(`importing ${JSON.stringify(row.username)}: ${reply.status} ${reply.text}`);
  return server.core.users.find({ username: row.username });
}
