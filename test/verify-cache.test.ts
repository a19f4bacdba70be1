// Online verification remembers verified tokens and the sessions and users behind them, and
// still refuses a revoked session, a changed password, a disabled or a deleted user: at once
// on the instance that made the change, and within a second on another instance or after the
// CLI changed the store, with every cache warm.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Store } from '../src/store/store.ts';
import { changesOf, type Change } from '../src/store/changes.ts';
import { ENGINES, startServer, freshStore, post, call, createUser, decodeJwt, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';
import { createUser as insertUser } from '../src/core/credentials.ts';

const run = promisify(execFile);
const CLI = path.resolve('bin/latchkey.js');
const PASSWORD = 'verify-cache-password';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Polls until `check` holds or the deadline passes; no timing is asserted, only the outcome. */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 10_000) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) assert.fail(`not seen before the deadline: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const userinfo = (server: TestServer, token: string) => call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
const refused = async (server: TestServer, token: string) => (await userinfo(server, token)).status === 401;

for (const engine of ENGINES) {
  describe(`verification cache on ${engine.name}`, () => {
    let store: FreshStore;
    let a: TestServer;
    let b: TestServer;
    let n = 0;

    before(async () => {
      store = await freshStore(engine);
      const deployment = { LATCHKEY_PUBLIC_URL: 'https://auth.example.test' };
      a = await startServer(engine, deployment, store);
      b = await startServer(engine, deployment, store);
    });
    after(async () => {
      await a.close();
      await b.close();
      await store.drop();
    });

    async function cli(...args: string[]) {
      await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...store.env, LOG_LEVEL: 'silent' } });
    }

    /** A new user with two logins, each verified on both instances so every cache holds them. */
    async function warmUser() {
      const username = `cache-${engine.name}-${++n}`;
      await createUser(a, { username, email: `${username}@example.com`, password: PASSWORD });
      const logins = [];
      for (let i = 0; i < 2; i++) logins.push((await post(`${a.url}/v1/login`, { username, password: PASSWORD })).body);
      for (const server of [a, b]) {
        for (const login of logins) {
          for (let i = 0; i < 2; i++) assert.equal((await userinfo(server, login.access_token)).status, 200);
        }
      }
      return { username, first: logins[0], second: logins[1] };
    }

    it('keeps verified tokens and sessions in memory, never the raw token', async () => {
      const { first } = await warmUser();
      for (const server of [a, b]) {
        const cache = server.core.verifyCache;
        assert.ok(cache.size.claims >= 1 && cache.size.sessions >= 1, 'the cache is warm');
        const held = cache.keys();
        assert.ok(held.claims.includes(crypto.createHash('sha256').update(first.access_token).digest('base64url')), 'the token is remembered by its hash');
        assert.ok(!held.claims.includes(first.access_token), 'never by the token itself');
        assert.ok(held.sessions.includes(decodeJwt(first.access_token).sid), 'its session is remembered by id');
      }
    });

    it('token-revoke: refused at once on the same instance, soon on the other', async () => {
      const { first, second } = await warmUser();
      assert.equal((await post(`${a.url}/v1/token-revoke`, { refresh_token: first.refresh_token })).status, 204);
      assert.equal((await userinfo(a, first.access_token)).status, 401);
      await eventually(() => refused(b, first.access_token), 'revocation on the other instance');
      assert.equal((await userinfo(b, second.access_token)).status, 200, 'the other session lives on');
    });

    it('a password change ends the other sessions at once here and soon on the other instance', async () => {
      const { first, second } = await warmUser();
      const change = await post(`${b.url}/v1/change-password`, { access_token: first.access_token, previous_password: PASSWORD, proposed_password: 'a-brand-new-password' });
      assert.equal(change.status, 204);
      assert.equal((await userinfo(b, second.access_token)).status, 401);
      await eventually(() => refused(a, second.access_token), 'password change on the other instance');
      assert.equal((await userinfo(a, first.access_token)).status, 200, 'the caller keeps their own session');
    });

    it('disable and delete through the admin API', async () => {
      const disabled = await warmUser();
      assert.equal((await post(`${a.url}/admin/users/${disabled.username}/disable`, {}, admin)).status, 200);
      for (const token of [disabled.first.access_token, disabled.second.access_token]) {
        const here = await userinfo(a, token);
        assert.equal(here.status, 401);
        assert.match(here.body.error_description, /disabled|revoked/);
        await eventually(() => refused(b, token), 'disable on the other instance');
      }
      const deleted = await warmUser();
      assert.equal((await call(`${a.url}/admin/users/${deleted.username}`, { method: 'DELETE', headers: admin })).status, 204);
      assert.equal((await userinfo(a, deleted.first.access_token)).status, 401);
      await eventually(() => refused(b, deleted.first.access_token), 'delete on the other instance');
    });

    it('an admin password set ends every session on both instances', async () => {
      const { username, first, second } = await warmUser();
      assert.equal((await post(`${b.url}/admin/users/${username}/password`, { password: 'set-by-the-admin-1' }, admin)).status, 200);
      for (const token of [first.access_token, second.access_token]) {
        assert.equal((await userinfo(b, token)).status, 401);
        await eventually(() => refused(a, token), 'admin password on the other instance');
      }
    });

    for (const [verb, extra] of [['sign-out', []], ['disable', []], ['set-password', ['--password', 'set-by-the-cli-123']], ['delete', []]] as const) {
      it(`the CLI's users ${verb} is seen by both running instances`, async () => {
        const { username, first, second } = await warmUser();
        await cli('users', verb, username, ...extra);
        for (const server of [a, b]) {
          for (const token of [first.access_token, second.access_token]) {
            await eventually(() => refused(server, token), `CLI ${verb} on ${server.url}`);
          }
        }
      });
    }

    it('a revocation that commits while a cache fill is in flight is not outlived: the stale row is never kept', async () => {
      const { first } = await warmUser();
      const sid = JSON.parse(Buffer.from(first.access_token.split('.')[1], 'base64url').toString()).sid as string;
      const core = a.core;
      const cache = core.verifyCache;
      // Empty this instance's cache for the session, then fill it with a load that reads the row
      // before the revocation commits (through the real store and its change feed) and returns after.
      cache.forget([{ of: 'session', id: sid }]);
      const filled = await cache.session(sid, async () => {
        const before = await core.store.sessionWithUser({ id: sid });
        assert.equal(before?.session.revoked_at, null);
        assert.ok(await core.store.revokeSession(sid, Date.now()));
        return before;
      });
      assert.equal(filled?.session.revoked_at, null, 'the in-flight read saw the row as it was');
      assert.equal((await userinfo(a, first.access_token)).status, 401, 'the next verification reads the revoked row');
      await eventually(() => refused(b, first.access_token), 'the other instance refuses it');
    });

    it('a remembered token still expires: works just before its exp, dead just after', async () => {
      const { first } = await warmUser();
      const exp = JSON.parse(Buffer.from(first.access_token.split('.')[1], 'base64url').toString()).exp as number;
      const left = exp - Math.floor(a.clock.now() / 1000);
      a.clock.advance(left - 2);
      assert.equal((await userinfo(a, first.access_token)).status, 200);
      a.clock.advance(3);
      const dead = await userinfo(a, first.access_token);
      assert.equal(dead.status, 401);
      assert.match(dead.body.error_description, /expired/);
      a.clock.advance(-(left + 1));
    });
  });

  describe(`store change announcements on ${engine.name}`, () => {
    let fresh: FreshStore;
    let store: Store;
    const heard: Change[] = [];

    before(async () => {
      fresh = await freshStore(engine);
      store = Store.open({ databaseUrl: fresh.env.DATABASE_URL, dataDir: fresh.env.LATCHKEY_DATA_DIR });
      await store.migrate();
      store.changes.subscribe((changes) => heard.push(...changes));
    });
    after(async () => {
      await store.close();
      await fresh.drop();
    });

    async function heardFrom(write: () => Promise<unknown>) {
      heard.length = 0;
      await write();
      return [...heard];
    }

    it('every write that can change a verification is announced, with its rows when known', async () => {
      const user = await insertUser(store, { username: 'ann', email: null, password_hash: null, status: 'active', managed_by: 'local', created_at: 1, updated_at: 1, password_changed_at: null });
      const session = { id: 's1', user_id: user.id, refresh_token_hash: 'h', dialect: 'wikimedia', refresh_count: 0, created_at: 1, expires_at: 9e12, revoked_at: null, last_used_at: 1, ip: null, user_agent: null } as const;
      assert.deepEqual(await heardFrom(() => store.insertSession({ ...session })), [], 'a new row makes nothing stale');
      assert.deepEqual(await heardFrom(() => store.takeRefresh('s1', 90, 2)), [], 'counting refreshes changes no decision');
      assert.deepEqual(await heardFrom(() => store.revokeSession('s1', 3)), [{ of: 'session', id: 's1' }]);
      assert.deepEqual(await heardFrom(() => store.revokeSession('s1', 3)), [], 'nothing changed, nothing announced');
      await store.insertSession({ ...session, id: 's2', refresh_token_hash: 'h2' });
      assert.deepEqual(await heardFrom(() => store.revokeUserSessions(user.id, 4)), [{ of: 'user', id: user.id }]);
      assert.deepEqual(await heardFrom(() => store.updateProfile(user.id, { updated_at: 5 })), [{ of: 'user', id: user.id }]);
      assert.deepEqual(
        await heardFrom(() => store.transaction(async (tx) => tx.updateProfile(user.id, { updated_at: 6 }))),
        [{ of: 'user', id: user.id }],
        'inside a transaction, announced after the commit',
      );
      assert.deepEqual(
        await heardFrom(() => store.transaction(async (tx) => {
          await tx.updateProfile(user.id, { updated_at: 7 });
          throw new Error('roll back');
        }).catch(() => {})),
        [],
        'a rolled-back transaction changed nothing',
      );
      assert.deepEqual(await heardFrom(() => store.deleteExpired({ codesBefore: 0, sessionsBefore: 9e12 + 1, auditBefore: 0 })), [{ of: 'sessions' }]);
      assert.deepEqual(await heardFrom(() => store.retireKeys(5, 'none')), [], 'no key to retire');
      assert.deepEqual(await heardFrom(() => store.deleteUser(user.id)), [{ of: 'user', id: user.id }]);
    });
  });
}

describe('reading changes off queries', () => {
  it('maps each kind of write to what it may change', async () => {
    const { Kysely, SqliteDialect } = await import('kysely');
    const SQLite = (await import('better-sqlite3')).default;
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    const of = (q: { toOperationNode(): any }) => changesOf(q.toOperationNode());
    assert.deepEqual(of(db.updateTable('users').set({ status: 'x' }).where('username', '=', 'a')), [{ of: 'users' }]);
    assert.deepEqual(of(db.updateTable('sessions').set({ revoked_at: 1 }).where('id', '=', 'a').where('revoked_at', 'is', null)), [{ of: 'session', id: 'a' }]);
    assert.deepEqual(of(db.updateTable('sessions').set({ revoked_at: 1 }).where((eb) => eb.or([eb('id', '=', 'a'), eb('id', '=', 'b')]))), [{ of: 'sessions' }]);
    assert.deepEqual(of(db.updateTable('sessions').set({ revoked_at: 1, last_used_at: 2 }).where('id', '=', 'a')), [{ of: 'session', id: 'a' }]);
    assert.deepEqual(of(db.updateTable('signing_keys').set({ retired_at: 1 }).where('kid', '=', 'k')), [{ of: 'keys' }]);
    assert.deepEqual(of(db.deleteFrom('signing_keys').where('retired_at', '<', 1)), [{ of: 'keys' }]);
    assert.deepEqual(of(db.insertInto('users').values({ username: 'a' }).onConflict((oc) => oc.column('username').doUpdateSet({ status: 'x' }))), [{ of: 'users' }]);
    assert.deepEqual(of(db.updateTable('audit_events').set({ kind: 'x' })), []);
    assert.deepEqual(of(db.selectFrom('sessions').selectAll()), []);
    await db.destroy();
  });
});
