// Review 2 of 8790bd3 (collided keys reserved) against 0011 (look-alikes refused); INVARIANTS 1,
// issue 12 item 2. After 0007 a key two accounts collided on (`glass`: `glass` and `glaß`) is
// held by neither, both set aside as `COLLISION-<id>` with no skeleton, until an operator settles
// it. The key is reserved, but its look-alikes are not: nobody holds the skeleton `glass`, so an
// anonymous first login through lazy migration (an old-service account `g1ass`) creates `g1ass`.
// Then the operator's settle, giving `glass` back to its owner, is refused because `glass` now
// looks like the newcomer's `g1ass`: the squatter keeps the owner from their own name.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, freshStore, startServer, post, createUser, type FreshStore, type TestServer } from './helpers.ts';
import { storeAsOf } from './databases.ts';

for (const engine of ENGINES) {
  describe(`review2: a look-alike of a collided key while it waits to be settled (${engine.name})`, () => {
    let shared: FreshStore;
    let old: TestServer;
    let server: TestServer;
    before(async () => {
      shared = await freshStore(engine);
      await storeAsOf(shared.env, '0006_lazy_migration_state', async (db) => {
        for (const username of ['glass', 'gla\u00DF']) {
          await db
            .insertInto('users')
            .values({ username, email: null, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
            .execute();
        }
      });
      old = await startServer(engine);
      await createUser(old, { username: 'g1ass', email: 'squatter@example.com', password: 'squatter-old-password' });
      server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` }, shared);
    });
    after(async () => {
      await server.close();
      await old.close();
      await shared.drop();
    });

    it('no one takes a look-alike of the collided name, and the operator can give the name back', async () => {
      assert.deepEqual((await server.core.users.collisions()).map((c) => c.key), ['glass', 'glass']);
      const squat = await post(`${server.url}/auth/access_token/`, { username: 'g1ass', password: 'squatter-old-password' });
      let settled: string;
      try {
        // The other account waiting under `glass` (the former `glaß`) is settled with another
        // name first, as settling refuses while another still waits under the key.
        await server.core.users.settleCollision(2, { username: 'glass-eszett' });
        settled = (await server.core.users.settleCollision(1)).username;
      } catch (error) {
        settled = `refused: ${(error as Error).message}`;
      }
      assert.deepEqual({ squat: squat.status, settled }, { squat: 400, settled: 'glass' });
    });
  });
}
