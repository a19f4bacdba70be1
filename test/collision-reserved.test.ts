// After migration 0007 a key two accounts collided on is held by neither (both set aside as
// `COLLISION-<id>`) until an operator settles it. Meanwhile no one else may take it: not the
// admin API, not an import, not lazy migration's create-at-first-login, not an email change;
// else a newcomer holds the name both old accounts answer to (issue 12 item 2: "both kept,
// reachable by id, until an operator decides").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, ADMIN_TOKEN, freshStore, startServer, post, call, createUser, type FreshStore, type TestServer } from './helpers.ts';
import { storeAsOf } from './databases.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

for (const engine of ENGINES) {
  describe(`a collided key stays reserved until settled (${engine.name})`, () => {
    let shared: FreshStore;
    let old: TestServer;
    let server: TestServer;
    before(async () => {
      shared = await freshStore(engine);
      await storeAsOf(shared.env, '0006_lazy_migration_state', async (db) => {
        // Two accounts the one-pass key told apart, one key now: username `strasse`, email `carol@strasse.example`.
        for (const [username, email] of [
          ['strasse', 'carol@stra\u00DFe.example'],
          ['stra\u00DFe', 'carol@strasse.example'],
        ]) {
          await db
            .insertInto('users')
            .values({ username, email, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
            .execute();
        }
      });
      old = await startServer(engine);
      await createUser(old, { username: 'strasse', email: 'newcomer@example.com', password: 'newcomer-old-password' });
      server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` }, shared);
      await createUser(server, { username: 'erin', email: 'erin@example.com', password: 'erin-password-1' });
    });
    after(async () => {
      await server.close();
      await old.close();
      await shared.drop();
    });

    it('no path takes the collided username or email before an operator settles it', async () => {
      assert.deepEqual((await server.core.users.collisions()).map((c) => c.key).sort(), ['carol@strasse.example', 'carol@strasse.example', 'strasse', 'strasse']);
      const byAdmin = await post(`${server.url}/admin/users`, { username: 'strasse', email: 'someone@example.com', password: 'a-long-password-1' }, admin);
      const emailByAdmin = await post(`${server.url}/admin/users`, { username: 'frank', email: 'Carol@strasse.example', password: 'a-long-password-1' }, admin);
      const imported = await call(`${server.url}/admin/users/import`, {
        body: [JSON.stringify({ username: 'strasse', password: 'a-long-password-2' }), JSON.stringify({ username: 'grace', email: 'carol@strasse.example' })].join('\n'),
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      const updated = await call(`${server.url}/admin/users/import?update=true`, {
        body: JSON.stringify({ username: 'erin', email: 'carol@strasse.example' }),
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      const migrated = await post(`${server.url}/auth/access_token/`, { username: 'strasse', password: 'newcomer-old-password' });
      // The names the set-aside accounts show: no one may hold their key, so looking one up by name
      // (as a listing shows it) finds no other account.
      const setAside = await post(`${server.url}/admin/users`, { username: 'collision-1', email: 'henry@example.com', password: 'a-long-password-1' }, admin);
      const lookup = await call(`${server.url}/admin/users/COLLISION-1`, { headers: admin });
      const holder = await call(`${server.url}/admin/users/strasse`, { headers: admin });
      assert.deepEqual(
        {
          byAdmin: byAdmin.status,
          emailByAdmin: emailByAdmin.status,
          importRejects: imported.body.rejects?.map((r: { line: number }) => r.line),
          updateRejects: updated.body.rejects?.map((r: { line: number }) => r.line),
          migrated: migrated.status,
          holder: holder.status,
          setAside: setAside.status,
          lookup: lookup.status,
        },
        { byAdmin: 409, emailByAdmin: 409, importRejects: [1, 2], updateRejects: [1], migrated: 400, holder: 404, setAside: 409, lookup: 404 },
        `${byAdmin.text} ${emailByAdmin.text} ${imported.text} ${updated.text} ${migrated.text.slice(0, 80)} ${holder.text}`,
      );
    });
  });
}
