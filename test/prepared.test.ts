// Hot-path queries compiled once (src/store/prepared.ts), on each engine: every call gets its own
// values in the right places, and a write the verify cache must hear of is refused outright
// (the change tracker reads a query when it is compiled, which a prepared query is only once).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Kysely } from 'kysely';
import { ENGINES, freshStore, type FreshStore } from './helpers.ts';
import { Store } from '../src/store/store.ts';
import { connect, type Connection } from '../src/store/db.ts';
import { prepared } from '../src/store/prepared.ts';
import type { Database } from '../src/store/schema.ts';
import { createUser } from '../src/core/credentials.ts';

for (const engine of ENGINES) {
  describe(`prepared queries on ${engine.name}`, () => {
    let fresh: FreshStore;
    let store: Store;
    /** A connection of the test's own to the store's database: prepared queries run on any Kysely. */
    let connection: Connection;
    let db: Kysely<Database>;

    before(async () => {
      fresh = await freshStore(engine);
      store = Store.open({ databaseUrl: fresh.env.DATABASE_URL, dataDir: fresh.env.LATCHKEY_DATA_DIR });
      await store.migrate();
      connection = connect({ databaseUrl: fresh.env.DATABASE_URL, dataDir: fresh.env.LATCHKEY_DATA_DIR });
      db = connection.db;
      const now = Date.now();
      for (const username of ['ada', 'grace']) {
        await createUser(store, { username, email: `${username}@example.com`, password_hash: null, status: 'active', managed_by: 'local', created_at: now, updated_at: now, password_changed_at: now });
      }
    });
    after(async () => {
      await connection.close();
      await store.close();
      await fresh.drop();
    });

    it('puts each call’s own values in their places, constants staying put', async () => {
      const byNameAndStatus = prepared((k: Kysely<Database>, username: string, status: 'active' | 'disabled') =>
        k.selectFrom('users').select(['username', 'status']).where('username', '=', username).where('status', '=', status).where('managed_by', '=', 'local'),
      );
      assert.deepEqual((await byNameAndStatus(db, engine.name, 'ada', 'active')).rows, [{ username: 'ada', status: 'active' }]);
      assert.deepEqual((await byNameAndStatus(db, engine.name, 'grace', 'active')).rows, [{ username: 'grace', status: 'active' }]);
      assert.deepEqual((await byNameAndStatus(db, engine.name, 'ada', 'disabled')).rows, []);
    });

    it('refuses to prepare a write the verify cache must hear of', async () => {
      const disable = prepared((k: Kysely<Database>, username: string) => k.updateTable('users').set({ status: 'disabled' }).where('username', '=', username));
      await assert.rejects(disable(db, engine.name, 'ada'), /may not change what the verify cache holds/);
      assert.equal((await store.userByUsername('ada'))?.status, 'active');
    });
  });
}
