// Signing keys: every algorithm verifies offline through the JWKS, keys are sealed at rest
// with LATCHKEY_KEY_SECRET, and a sealed store refuses to start without the secret.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';
import { ENGINES, startServer, freshStore, post, call, createUser, type FreshStore, type TestServer } from './helpers.ts';
import { PUBLISH_AHEAD_MS } from '../src/core/keys.ts';
import { loadConfig } from '../src/platform/config.ts';
import { openServices } from '../src/app/app.ts';

const SECRET = 'a-secret-that-seals-the-keys-0123456789';
const silent = { info() {}, error() {} } as never;

for (const engine of ENGINES) {
  describe(`signing keys on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;

    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, { LATCHKEY_KEY_SECRET: SECRET }, store);
      await createUser(server, { username: 'kim', email: 'kim@example.com', password: 'kim-password' });
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
      it(`tokens signed with ${alg} verify offline against the JWKS`, async () => {
        const kid = await server.core.keys.rotate(alg);
        server.clock.advance(PUBLISH_AHEAD_MS / 1000 + 1);
        const login = await post(`${server.url}/v1/login`, { username: 'kim', password: 'kim-password' });
        const header = decodeProtectedHeader(login.body.access_token);
        assert.deepEqual([header.alg, header.kid], [alg, kid]);
        const jwks = (await call(`${server.url}/.well-known/jwks.json`)).body;
        const { payload } = await jwtVerify(login.body.access_token, createLocalJWKSet(jwks), { audience: 'latchkey' });
        assert.equal(payload.username, 'kim');
        assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${login.body.access_token}` } })).status, 200);
        const discovery = (await call(`${server.url}/.well-known/openid-configuration`)).body;
        assert.ok(discovery.id_token_signing_alg_values_supported.includes(alg));
      });
    }

    it('a store with sealed keys will not start without the secret, nor with a wrong one', async () => {
      for (const secret of [undefined, 'the-wrong-secret-0123456789abcdefgh']) {
        const config = loadConfig({ ...store.env, LOG_LEVEL: 'silent', ...(secret ? { LATCHKEY_KEY_SECRET: secret } : {}) });
        await assert.rejects(openServices(config, silent), secret ? /LATCHKEY_KEY_SECRET does not open the signing keys/ : /LATCHKEY_KEY_SECRET/);
      }
    });
  });
}
