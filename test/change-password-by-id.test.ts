// A password change checks the current password of the account the access token belongs to, by
// its id, never by looking its username up again: an account migration 0007 set aside as
// `COLLISION-<id>` has a username whose key (`collision-<id>`) another account may hold, and the
// current password checked would be that one's (INVARIANTS 1 and 3).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/store/db.ts';
import { hashPassword } from '../src/core/passwords.ts';
import { ENGINES, freshStore, startServer, post, createUser, type FreshStore, type TestServer } from './helpers.ts';

for (const engine of ENGINES) {
  describe(`change-password of an account set aside by a collision (${engine.name})`, () => {
    let shared: FreshStore;
    let server: TestServer;
    let victimToken: string;
    let victimId: number;
    let server0Hash: Promise<string> | undefined;
    before(async () => {
      shared = await freshStore(engine);
      // One public URL (the tokens' issuer) for both starts, so the token outlives the restart.
      const sameIssuer = { LATCHKEY_PUBLIC_URL: 'http://latchkey.test' };
      const first = await startServer(engine, sameIssuer, shared);
      try {
        victimId = (await createUser(first, { username: 'victim', email: 'victim@example.com', password: 'victim-password-1' })).id;
        victimToken = (await post(`${first.url}/v1/login`, { username: 'victim', password: 'victim-password-1' })).body.access_token;
        assert.ok(victimToken);
        server0Hash = hashPassword('other-password-1');
      } finally {
        await first.close();
      }
      // What migration 0007 does to an account on a collided key: its name set aside, its session kept.
      const connection = connect({ databaseUrl: shared.env.DATABASE_URL, dataDir: shared.env.LATCHKEY_DATA_DIR });
      try {
        await connection.db.updateTable('users').set({ username: `COLLISION-${victimId}` }).where('id', '=', victimId).execute();
        // An account that holds the key of that name, made before such names were reserved.
        const other = (await server0Hash)!;
        await connection.db
          .insertInto('users')
          .values({ username: `collision-${victimId}`, email: 'other@example.com', password_hash: other, status: 'active', managed_by: 'local', created_at: 1, updated_at: 1, password_changed_at: 1 } as any)
          .execute();
      } finally {
        await connection.close();
      }
      server = await startServer(engine, sameIssuer, shared);
    });
    after(async () => {
      await server.close();
      await shared.drop();
    });

    it("the other account's password does not change the set-aside account's; its own does", async () => {
      const change = (previous: string, proposed: string) =>
        post(`${server.url}/v1/change-password`, { access_token: victimToken, previous_password: previous, proposed_password: proposed });
      const withOthers = await change('other-password-1', 'attacker-chose-this-1');
      const withOwn = await change('victim-password-1', 'victim-password-2');
      assert.deepEqual({ withOthers: withOthers.status, withOwn: withOwn.status }, { withOthers: 401, withOwn: 204 }, `${withOthers.text} ${withOwn.text}`);
      const user = (await server.core.store.userById(victimId))!;
      assert.equal(user.username, `COLLISION-${victimId}`);
    });
  });
}
