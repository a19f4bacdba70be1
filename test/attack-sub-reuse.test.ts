// Attack review (INVARIANTS.md 2: "No two accounts can ever share a sub"; OpenID Connect Core 2:
// `sub` is "never reassigned"). Ids are never handed out again by the store (syncUserIds moves only
// forward), but an import row may name the id of a deleted account, and a different person then
// holds the deleted one's sub: a relying party that kept data under that sub gives it to them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, ENGINES, startServer, post, call, decodeJwt, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

for (const engine of ENGINES) {
  describe(`attack: a deleted account's id given to someone else on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(() => server.close());

    it('an import cannot give a deleted account\'s id (its sub) to another account', async () => {
      const alice = await post(`${server.url}/admin/users`, { username: 'alice', email: 'alice@example.com', password: 'alice-password-1' }, admin);
      assert.equal(alice.status, 201, alice.text);
      const aliceSub = decodeJwt((await post(`${server.url}/v1/login`, { username: 'alice', password: 'alice-password-1' })).body.access_token).sub;
      assert.equal((await call(`${server.url}/admin/user-ids/${alice.body.id}`, { method: 'DELETE', headers: admin })).status, 204);
      const imported = await call(`${server.url}/admin/users/import`, {
        body: JSON.stringify({ id: String(alice.body.id), username: 'mallory', email: 'mallory@example.com', password: 'mallory-password-1' }),
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      const login = await post(`${server.url}/v1/login`, { username: 'mallory', password: 'mallory-password-1' });
      const mallorySub = login.status === 200 ? decodeJwt(login.body.access_token).sub : undefined;
      assert.notEqual(mallorySub, aliceSub, `import: ${imported.text}; mallory's sub ${mallorySub} is alice's ${aliceSub}`);
    });
  });
}
