// `users settle` with no new name gives a collided account its key back: a name stored before
// confusables were refused may mix scripts (`gаss` with a Cyrillic `а`), so it is checked as any
// name made here (UTS #39), and the operator is told to give another. INVARIANTS 1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, freshStore, startServer, type FreshStore, type TestServer } from './helpers.ts';
import { storeAsOf } from './databases.ts';

for (const engine of ENGINES) {
  describe(`settling a collision on a mixed-script key (${engine.name})`, () => {
    let shared: FreshStore;
    let server: TestServer;
    before(async () => {
      shared = await freshStore(engine);
      await storeAsOf(shared.env, '0006_lazy_migration_state', async (db) => {
        for (const username of ['g\u0430ss', 'g\u0430\u00DF']) {
          await db
            .insertInto('users')
            .values({ username, email: null, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
            .execute();
        }
      });
      server = await startServer(engine, {}, shared);
    });
    after(async () => {
      await server.close();
      await shared.drop();
    });

    it('refuses to give back a key that mixes scripts, and takes another name', async () => {
      assert.deepEqual((await server.core.users.collisions()).map((c) => c.key), ['g\u0430ss', 'g\u0430ss']);
      await server.core.users.settleCollision(2, { username: 'gass-eszett' });
      await assert.rejects(server.core.users.settleCollision(1), /script|confusable|look/i);
      assert.equal((await server.core.users.settleCollision(1, { username: 'gass' })).username, 'gass');
    });
  });
}
