// Issue 12, item 2 (INVARIANTS.md 1 and 2): no account looks like another (UTS #39 skeleton, unique
// in the store), on every path that makes or renames one; and an id, once an account's, is never
// another's. The admin API's refusal of look-alikes is test/attack-confusables.test.ts; the import
// of a deleted account's id, test/attack-sub-reuse.test.ts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { skeleton, lookAlikeKey } from '../src/domain/skeleton.ts';
import { CONFUSABLES_VERSION } from '../src/domain/confusables-data.ts';
import { createUser as storeUser, createUsers } from '../src/core/credentials.ts';
import { UniqueViolation } from '../src/store/store.ts';
import { ENGINES, ADMIN_TOKEN, startServer, freshStore, call, post, createUser, type TestServer } from './helpers.ts';
import { storeAsOf } from './databases.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function importRows(server: TestServer, rows: object[], update = false) {
  const reply = await call(`${server.url}/admin/users/import${update ? '?update=true' : ''}`, {
    body: rows.map((row) => JSON.stringify(row)).join('\n') + '\n',
    headers: { ...admin, 'content-type': 'application/x-ndjson' },
  });
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
}

/** An old service (Wikimedia-shaped) that knows one account, and says its email. */
async function oldService(username: string, password: string, email: string) {
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const given = JSON.parse(body || '{}');
      if (given.username !== username || given.password !== password) {
        response.writeHead(401, { 'content-type': 'application/json' }).end('{"status":401,"message":"Incorrect username or password."}');
        return;
      }
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const token = `${part({ alg: 'none' })}.${part({ username, email })}.x`;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, id_token: token, refresh_token: 'r', expires_in: 86400 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('UTS #39 skeleton', () => {
  it('follows the specification on its own examples and the review\'s', () => {
    assert.equal(CONFUSABLES_VERSION, '17.0.0');
    // UTS #39 section 4: `paypal` with a Cyrillic `а` and `рауpal`; default-ignorables dropped.
    assert.equal(skeleton('p\u0430ypal'), skeleton('paypal'));
    assert.equal(skeleton('pa\u200Bypal'), skeleton('paypal'));
    for (const [lookAlike, original] of [
      ['adm\u0131n', 'admin'],
      ['\u0251dmin', 'admin'],
      ['\ua731cope', 'scope'],
      ['\u0455\u0441\u043e\u0440\u0435', 'scope'],
      ['admin@ex\u0251mple.com', 'admin@example.com'],
      ['b0b', 'bob'],
      ['barn', 'bam'],
    ]) {
      assert.equal(lookAlikeKey(lookAlike), lookAlikeKey(original), lookAlike);
    }
    assert.notEqual(lookAlikeKey('alice'), lookAlikeKey('alicia'));
  });
});

for (const engine of ENGINES) {
  describe(`look-alike accounts and deleted ids on ${engine.name}`, () => {
    it('an import row that looks like an existing account, or like an earlier row, is rejected with its line', async () => {
      const server = await startServer(engine);
      try {
        await createUser(server, { username: 'admin', email: 'admin@example.com', password: 'admin-own-password' });
        const result = await importRows(server, [
          { username: 'adm\u0131n', email: 'a1@example.com', password: 'a-long-password-1' },
          { username: 'mallory', email: 'admin@ex\u0251mple.com', password: 'a-long-password-1' },
          { username: 'carol', email: 'carol@example.com', password: 'a-long-password-1' },
          { username: 'bob', email: 'bob@example.com', password: 'a-long-password-1' },
          { username: 'b0b', email: 'b0b@example.com', password: 'a-long-password-1' },
        ]);
        assert.deepEqual([result.imported, result.rejected], [2, 3], JSON.stringify(result));
        assert.deepEqual(result.rejects.map((r: any) => r.line), [1, 2, 5]);
        assert.match(result.rejects[0].reason, /username looks like the username of user \d+/);
        assert.match(result.rejects[1].reason, /email looks like the email of user \d+/);
        assert.match(result.rejects[2].reason, /username looks like/);
        // A rename by import (a new email for carol) is held to the same rule.
        const renamed = await importRows(server, [{ username: 'carol', email: 'adm\u0131n@example.com' }], true);
        assert.deepEqual([renamed.updated, renamed.rejected], [0, 1], JSON.stringify(renamed));
        assert.match(renamed.rejects[0].reason, /email looks like/);
        // The same account re-imported is no look-alike of itself.
        const again = await importRows(server, [{ username: 'carol', email: 'carol@example.com', password: 'a-long-password-1' }], true);
        assert.equal(again.rejected, 0, JSON.stringify(again));
      } finally {
        await server.close();
      }
    });

    it('the store itself refuses a second account with a taken skeleton (a racing creation)', async () => {
      const server = await startServer(engine);
      try {
        await createUser(server, { username: 'admin', email: 'admin@example.com', password: 'admin-own-password' });
        const row = (username: string, email: string | null) => ({
          username, email, password_hash: null, status: 'active' as const, managed_by: 'external' as const, created_at: 1, updated_at: 1, password_changed_at: null,
        });
        await assert.rejects(storeUser(server.core.store, row('adm\u0131n', null)), UniqueViolation);
        await assert.rejects(createUsers(server.core.store, [row('eve', 'admin@ex\u0251mple.com')]), UniqueViolation);
      } finally {
        await server.close();
      }
    });

    it('a deleted account\'s id is refused at import with its line, by the store, and never handed out again', async () => {
      const server = await startServer(engine);
      try {
        const users = [];
        for (const name of ['u1', 'u2', 'u3']) users.push(await createUser(server, { username: name, email: `${name}@example.com`, password: 'a-long-password-1' }));
        const top = users[2].id;
        assert.equal((await call(`${server.url}/admin/user-ids/${top}`, { method: 'DELETE', headers: admin })).status, 204);
        const next = await createUser(server, { username: 'u4', email: 'u4@example.com', password: 'a-long-password-1' });
        assert.ok(next.id > top, `the store handed out ${next.id} after deleting ${top}`);
        const result = await importRows(server, [
          { id: String(top), username: 'mallory', email: 'mallory@example.com', password: 'a-long-password-1' },
          { id: String(next.id + 10), username: 'trent', email: 'trent@example.com', password: 'a-long-password-1' },
        ]);
        assert.deepEqual([result.imported, result.rejected], [1, 1], JSON.stringify(result));
        assert.deepEqual(result.rejects.map((r: any) => r.line), [1]);
        assert.match(result.rejects[0].reason, new RegExp(`id ${top} belonged to a deleted user`));
        // The store's trigger, below the import's check.
        await assert.rejects(
          createUsers(server.core.store, [
            { id: top, username: 'eve', email: null, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null },
          ]),
          UniqueViolation,
        );
        assert.equal((await post(`${server.url}/v1/login`, { username: 'mallory', password: 'a-long-password-1' })).status, 401);
      } finally {
        await server.close();
      }
    });

    it('a first-login migration drops an email claim that looks like another account\'s, as it drops a taken one', async () => {
      const old = await oldService('victim', 'victim-pass', 'admin@ex\u0251mple.com');
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        await createUser(server, { username: 'admin', email: 'admin@example.com', password: 'admin-own-password' });
        const login = await post(`${server.url}/v1/login`, { username: 'victim', password: 'victim-pass' });
        assert.equal(login.status, 200, login.text);
        assert.equal((await server.core.store.userByUsername('victim'))!.email, null);
      } finally {
        await server.close();
        await old.close();
      }
    });

    it('a store from before: skeletons filled in, existing look-alikes kept and listed, deleted ids recovered from the audit trail', async () => {
      const shared = await freshStore(engine);
      try {
        await storeAsOf(shared.env, '0006_lazy_migration_state', async (db) => {
          const row = (username: string, email: string | null) => ({
            username, email, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null,
          });
          for (const [username, email] of [
            ['admin', 'admin@example.com'],
            ['adm\u0131n', 'other@example.com'],
            ['carol', 'admin@ex\u0251mple.com'],
            ['dave', null],
            // Two NFC-equal names: an identity collision (migration 0007), settled below.
            ['x\u01F0y', null],
            ['xj\u030Cy', null],
          ] as [string, string | null][]) {
            await db.insertInto('users').values(row(username, email) as any).execute();
          }
          // User 9 was deleted before tombstones: its audit events remain.
          await db.insertInto('audit_events').values({ at: 1, user_id: 9, kind: 'user_created', ip: null, detail: null } as any).execute();
        });
        const server = await startServer(engine, {}, shared);
        try {
          const { store, users } = server.core;
          assert.deepEqual(
            (await users.lookAlikes()).map((c) => [c.user_id, c.field, c.looks_like_user_id]),
            [
              [2, 'username', 1],
              [3, 'email', 1],
            ],
          );
          assert.equal((await store.userById(1))!.username_skeleton, lookAlikeKey('admin'));
          assert.equal((await store.userById(2))!.username_skeleton, null);
          assert.equal((await store.userById(2))!.email_skeleton, lookAlikeKey('other@example.com'));
          assert.equal((await store.userById(3))!.email_skeleton, null);
          assert.equal((await store.userById(4))!.email_skeleton, null);
          // Both kept and reachable; no third look-alike can be made.
          for (const id of [1, 2, 3]) assert.equal((await call(`${server.url}/admin/user-ids/${id}`, { headers: admin })).status, 200);
          const third = await post(`${server.url}/admin/users`, { username: '\u0251dmin', email: 'x@example.com', password: 'a-long-password-1' }, admin);
          assert.equal(third.status, 400, third.text);
          // A rename by the operator is held to the rule too.
          await assert.rejects(users.settleCollision(5, { username: '\u0251dmin' }), /username looks like the username of user 1/);
          assert.equal((await users.settleCollision(5, { username: 'xavier' })).username, 'xavier');
          const imported = await importRows(server, [{ id: '9', username: 'mallory', email: 'mallory@example.com', password: 'a-long-password-1' }]);
          assert.equal(imported.rejected, 1, JSON.stringify(imported));
        } finally {
          await server.close();
        }
      } finally {
        await shared.drop();
      }
    });
  });
}
