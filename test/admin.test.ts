// The admin API and the `latchkey` CLI, which work on the same store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { ENGINES, startServer, freshStore, post, call, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';

const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;

for (const engine of ENGINES) {
  describe(`admin API and CLI on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, {}, store);
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    /** Runs the CLI as an operator would, on the server's store. */
    async function cli(args: string[], input?: string) {
      const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...store.env, LOG_LEVEL: 'silent' } });
      const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d) => (stdout += d));
        child.stderr!.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
      child.stdin!.end(input ?? '');
      return done;
    }

    it('refuses without the admin token', async () => {
      const none = await post(`${server.url}/admin/users`, { username: 'x', email: 'x@example.com', password: 'password-123' });
      const wrong = await call(`${server.url}/admin/users`, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
      for (const reply of [none, wrong]) {
        assert.deepEqual([reply.status, reply.body], [401, { error: 'unauthorized', message: 'Admin token required.' }]);
        assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="latchkey-admin"');
      }
    });

    it('creates users three ways and never shows a hash', async () => {
      const made = await post(`${server.url}/admin/users`, { username: 'Alice', email: 'Alice@Example.com', password: 'alice-password' }, admin);
      assert.equal(made.status, 201);
      assert.deepEqual(Object.keys(made.body).sort(), [
        'created_at', 'email', 'id', 'legacy_id', 'managed_by', 'password_changed_at', 'status', 'updated_at', 'username',
      ]);
      assert.equal(made.body.username, 'alice');
      assert.equal(made.body.email, 'alice@example.com');
      assert.equal(made.body.status, 'active');
      const temp = await post(`${server.url}/admin/users`, { username: 'bob', email: 'bob@example.com', temporary_password: 'bob-temporary' }, admin);
      assert.equal(temp.body.status, 'force_change_password');
      const ext = await post(`${server.url}/admin/users`, { username: 'carol', email: 'carol@example.com', external: true }, admin);
      assert.equal(ext.body.managed_by, 'external');
      assert.equal(ext.status, 201);
      // An externally managed user has no password to log in with.
      assert.equal((await post(`${server.url}/v1/login`, { username: 'carol', password: '' })).status, 422);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'carol', password: 'anything-at-all' })).status, 401);
    });

    it('answers 409 for a taken username or email, 400 for bad input, 404 for unknown users', async () => {
      // Its own user to clash with, so it runs alone as well as after the others.
      assert.equal((await post(`${server.url}/admin/users`, { username: 'zoe', email: 'zoe@example.com', password: 'zoe-password' }, admin)).status, 201);
      const refused = async (reply: Promise<{ status: number; body: any }>, status: number, error: string, message: string) => {
        const { status: got, body } = await reply;
        assert.deepEqual([got, body.error, body.message], [status, error, message]);
      };
      const taken = 'a user with that username or email already exists';
      await refused(post(`${server.url}/admin/users`, { username: 'ZOE', email: 'other@example.com', password: 'password-123' }, admin), 409, 'user_exists', taken);
      await refused(post(`${server.url}/admin/users`, { username: 'zoe2', email: 'Zoe@example.com', password: 'password-123' }, admin), 409, 'user_exists', taken);
      await refused(post(`${server.url}/admin/users`, { username: 'dave', email: 'not-an-email', password: 'password-123' }, admin), 400, 'validation', 'email is not a valid address');
      await refused(post(`${server.url}/admin/users`, { username: 'dave', email: 'dave@example.com', password: 'short' }, admin), 400, 'password_policy', 'Password must be at least 8 characters long.');
      await refused(post(`${server.url}/admin/users`, { username: 'dave', email: 'dave@example.com' }, admin), 400, 'validation', 'give exactly one of password or temporary_password, or external: true');
      await refused(post(`${server.url}/admin/users`, { username: 'has space', email: 'd@example.com', password: 'password-123' }, admin), 400, 'validation', 'username must be 1-128 visible characters without spaces');
      await refused(call(`${server.url}/admin/users/nobody`, { headers: admin }), 404, 'user_not_found', 'No such user.');
      const badLimit = await call(`${server.url}/admin/users?limit=abc`, { headers: admin });
      assert.deepEqual([badLimit.status, badLimit.body.error], [400, 'validation']);
    });

    it('lists, gets, disables, enables, sets passwords and deletes', async () => {
      // Users of its own, so it runs alone as well as after the others.
      for (const user of [
        { username: 'lena', email: 'lena@example.com', password: 'lena-password' },
        { username: 'lars', email: 'lars@example.com', temporary_password: 'lars-temporary' },
        { username: 'lou', email: 'lou@example.com', external: true },
      ]) assert.equal((await post(`${server.url}/admin/users`, user, admin)).status, 201);
      const list = await call(`${server.url}/admin/users?limit=2`, { headers: admin });
      assert.equal(list.status, 200);
      assert.equal(list.body.users.length, 2);
      const rest = await call(`${server.url}/admin/users?after=${list.body.next_after}`, { headers: admin });
      // every() over an empty page would pass: the rest must hold users, all after the first page.
      assert.ok(rest.body.users.length > 0, "the second page has the rest");
      assert.ok(rest.body.users.every((u: { id: number }) => u.id > list.body.next_after));

      assert.equal((await call(`${server.url}/admin/users/lena`, { headers: admin })).body.username, 'lena');
      assert.equal((await post(`${server.url}/admin/users/lena/disable`, {}, admin)).body.status, 'disabled');
      assert.equal((await post(`${server.url}/v1/login`, { username: 'lena', password: 'lena-password' })).status, 401);
      assert.equal((await post(`${server.url}/admin/users/lena/enable`, {}, admin)).body.status, 'active');
      assert.equal((await post(`${server.url}/v1/login`, { username: 'lena', password: 'lena-password' })).status, 200);

      const set = await post(`${server.url}/admin/users/lena/password`, { password: 'lena-second-password' }, admin);
      assert.equal(set.status, 200);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'lena', password: 'lena-second-password' })).status, 200);
      const temp = await post(`${server.url}/admin/users/lena/password`, { password: 'lena-temporary', temporary: true }, admin);
      assert.equal(temp.body.status, 'force_change_password');
      const login = await post(`${server.url}/v1/login`, { username: 'lena', password: 'lena-temporary' });
      assert.equal(login.body.challenge_name, 'NEW_PASSWORD_REQUIRED');
      assert.equal((await post(`${server.url}/admin/users/lou/password`, { password: 'lou-password' }, admin)).status, 409);

      const sessions = (await call(`${server.url}/admin/users/lena/sessions`, { headers: admin })).body.sessions;
      assert.ok(sessions.length >= 2);
      assert.deepEqual(Object.keys(sessions[0]).sort(), [
        'api', 'created_at', 'expires_at', 'id', 'ip', 'last_used_at', 'live', 'refreshes', 'revoked_at', 'user_agent',
      ]);
      assert.ok(sessions.every((s: { live: boolean }) => !s.live), 'setting a password ended them all');
      const events = (await call(`${server.url}/admin/users/lena/events`, { headers: admin })).body.events;
      const kinds = events.map((e: { kind: string }) => e.kind);
      for (const kind of ['user_created', 'user_disabled', 'user_enabled', 'login', 'password_set_by_admin']) assert.ok(kinds.includes(kind), kind);
      server.clock.advance(366 * 86400); // past LATCHKEY_AUDIT_RETENTION_DAYS
      try {
        await server.core.sweep();
        assert.deepEqual((await call(`${server.url}/admin/users/lena/events`, { headers: admin })).body.events, []);
        assert.deepEqual((await call(`${server.url}/admin/users/lena/sessions`, { headers: admin })).body.sessions, []);
      } finally {
        server.clock.advance(-366 * 86400);
      }

      const removed = await call(`${server.url}/admin/users/lars`, { method: 'DELETE', headers: admin });
      assert.equal(removed.status, 204);
      assert.equal((await call(`${server.url}/admin/users/lars`, { headers: admin })).status, 404);
    });

    it('the CLI creates a user with a temporary password that the running server sees', async () => {
      const made = await cli(['users', 'create', 'Erin', '--email', 'erin@example.com', '--temporary-password', 'erin-temporary']);
      assert.equal(made.code, 0, made.stderr);
      const user = JSON.parse(made.stdout);
      assert.equal(user.username, 'erin');
      assert.equal(user.status, 'force_change_password');
      assert.equal(user.password_hash, undefined);
      const login = await post(`${server.url}/v1/login`, { username: 'erin', password: 'erin-temporary' });
      assert.equal(login.body.challenge_name, 'NEW_PASSWORD_REQUIRED');
    });

    it('the CLI sets a password from stdin, lists, disables, signs out, deletes, and explains mistakes', async () => {
      // Users of its own: one made with a temporary password, as an operator makes one, and one
      // whose name the CLI must find taken, whatever its case.
      assert.equal((await cli(['users', 'create', 'Fern', '--email', 'fern@example.com', '--temporary-password', 'fern-temporary'])).code, 0);
      assert.equal((await post(`${server.url}/admin/users`, { username: 'Gail', email: 'gail@example.com', password: 'gail-password' }, admin)).status, 201);
      const set = await cli(['users', 'set-password', 'fern', '--password-stdin'], 'fern-own-password\n');
      assert.equal(set.code, 0, set.stderr);
      const login = await post(`${server.url}/v1/login`, { username: 'fern', password: 'fern-own-password' });
      assert.equal(login.status, 200);
      const listed = JSON.parse((await cli(['users', 'list'])).stdout);
      assert.ok(listed.some((u: { username: string }) => u.username === 'fern'));
      const sessions = JSON.parse((await cli(['users', 'sessions', 'fern'])).stdout);
      assert.equal(sessions.filter((s: { live: boolean }) => s.live).length, 1);
      const events = JSON.parse((await cli(['users', 'events', 'fern'])).stdout);
      assert.equal(events[0].kind, 'login');
      const out = await cli(['users', 'sign-out', 'fern']);
      assert.equal(JSON.parse(out.stdout).revoked_sessions, 1);
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${login.body.access_token}` } })).status, 401);
      assert.equal(JSON.parse((await cli(['users', 'disable', 'fern'])).stdout).status, 'disabled');
      assert.equal(JSON.parse((await cli(['users', 'enable', 'fern'])).stdout).status, 'active');
      assert.equal((await cli(['users', 'delete', 'fern'])).code, 0);
      const missing = await cli(['users', 'get', 'fern']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /user_not_found/);
      const taken = await cli(['users', 'create', 'gail', '--email', 'new@example.com', '--password', 'password-123']);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /user_exists/);
      const usage = await cli(['users', 'frobnicate']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /^latchkey users: unknown command 'frobnicate'/);
    });

    it('the CLI rotates keys, and the server publishes the new one', async () => {
      const rotated = await cli(['keys', 'rotate']);
      assert.equal(rotated.code, 0, rotated.stderr);
      const { kid } = JSON.parse(rotated.stdout);
      const listed = JSON.parse((await cli(['keys', 'list'])).stdout);
      assert.equal(listed.length, 2);
      server.clock.advance(61); // the next reload of the running server
      const jwks = (await call(`${server.url}/.well-known/jwks.json`)).body;
      assert.ok(jwks.keys.some((k: { kid: string }) => k.kid === kid));
      server.clock.advance(-61);
      const migrate = await cli(['migrate']);
      assert.equal(migrate.code, 0, migrate.stderr);
    });
  });
}
