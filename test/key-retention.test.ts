// A retired signing key stays in the JWKS exactly as long as a token it signed may live, and
// leaves it (and the store) after: checked from both sides on the test clock.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';
import { PUBLISH_AHEAD_MS } from '../src/core/keys.ts';
import { ENGINES, startServer, freshStore, post, call, createUser, type TestServer, type FreshStore } from './helpers.ts';

const DAY = 86400;
const PUBLISH_AHEAD = PUBLISH_AHEAD_MS / 1000;

for (const engine of ENGINES) {
  describe(`retired keys leave the JWKS on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;

    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, {}, store);
      await createUser(server, { username: 'ret', email: 'ret@example.com', password: 'ret-password' });
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    const kids = async (on = server) => ((await call(`${on.url}/.well-known/jwks.json`)).body.keys as { kid: string }[]).map((k) => k.kid).sort();
    const roypiToken = async () => (await post(`${server.url}/auth/access_token/`, { username: 'ret', password: 'ret-password' })).body.access_token as string;
    const verifyOffline = async (token: string) =>
      jwtVerify(token, createLocalJWKSet((await call(`${server.url}/.well-known/jwks.json`)).body), { audience: 'latchkey', currentDate: new Date(server.clock.now()) });

    it('after a rotation, the old key is published until the last token it signed has expired, and not after', async () => {
      server.clock.freeze();
      const start = server.clock.offsetMs;
      const at = (seconds: number) => {
        server.clock.offsetMs = start + seconds * 1000;
      };
      const oldKid = decodeProtectedHeader(await roypiToken()).kid!;
      const newKid = await server.core.keys.rotate();
      assert.deepEqual(await kids(), [oldKid, newKid].sort());

      // The old key signs until its successor comes of age; the longest-lived token it signs
      // (Roypi's, 5 days) must stay verifiable offline for its whole life.
      at(PUBLISH_AHEAD - 1);
      const lastOld = await roypiToken();
      assert.equal(decodeProtectedHeader(lastOld).kid, oldKid);
      at(PUBLISH_AHEAD + 1);
      assert.equal(decodeProtectedHeader(await roypiToken()).kid, newKid);

      at(PUBLISH_AHEAD - 1 + 5 * DAY - 1);
      assert.deepEqual(await kids(), [oldKid, newKid].sort());
      const { payload } = await verifyOffline(lastOld);
      assert.equal(payload.username, 'ret');

      at(PUBLISH_AHEAD + 5 * DAY + 1);
      assert.deepEqual(await kids(), [newKid]);
      await assert.rejects(verifyOffline(lastOld));
      // Another instance, loading the store afresh, publishes the same.
      const other = await startServer(engine, {}, store);
      try {
        other.clock.offsetMs = server.clock.now() - Date.now();
        assert.deepEqual(await kids(other), [newKid]);
      } finally {
        await other.close();
      }
      // The next rotation deletes it from the store; the successor stays until its own successor's tokens could outlive it.
      const third = await server.core.keys.rotate();
      assert.deepEqual(server.core.keys.list().map((k) => k.kid).sort(), [newKid, third].sort());
    });
  });
}
