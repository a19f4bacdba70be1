// One token issuer: a token from any API passes every verification path, and a revocation
// through any path is seen by all of them: at once on its instance, within a second on the others.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PUBLISH_AHEAD_MS } from '../src/core/keys.ts';
import { ENGINES, startServer, freshStore, post, call, createUser, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';

const PASSWORD = 'one-password-for-all';
const INTROSPECTION = 'introspection-token-0123456789abcdefghij';

for (const engine of ENGINES) {
  describe(`cross-API tokens on ${engine.name}`, () => {
    let store: FreshStore;
    let a: TestServer;
    let b: TestServer;

    before(async () => {
      store = await freshStore(engine);
      // Instances of one deployment share its public URL, hence its issuer.
      const deployment = { LATCHKEY_PUBLIC_URL: 'https://auth.example.test', LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION };
      a = await startServer(engine, deployment, store);
      b = await startServer(engine, deployment, store);
      await createUser(a, { username: 'neo', email: 'neo@example.com', password: PASSWORD });
    });
    after(async () => {
      await a.close();
      await b.close();
      await store.drop();
    });

    async function tokensFromEveryApi(server: TestServer) {
      const wikimedia = await post(`${server.url}/v1/login`, { username: 'neo', password: PASSWORD });
      const roypi = await post(`${server.url}/auth/access_token/`, { username: 'neo', password: PASSWORD });
      const ziik = await post(`${server.url}/api/authenticate`, { username: 'neo@example.com', password: PASSWORD });
      return {
        wikimedia: wikimedia.body.access_token as string,
        roypi: roypi.body.access_token as string,
        ziik: ziik.body[0].jwt as string,
        refresh: wikimedia.body.refresh_token as string,
      };
    }

    /** Every verification path's verdict on a token, from one server. (Renew paths are not among them: each renews only its own API's sessions.) */
    async function verdicts(server: TestServer, token: string) {
      const [userinfoBearer, userinfoToken, verify, protectedRoute, forward, introspect] = await Promise.all([
        call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } }),
        call(`${server.url}/userinfo`, { headers: { authorization: `Token ${token}` } }),
        post(`${server.url}/auth/verify_token/`, { token }),
        call(`${server.url}/auth/user/`, { headers: { authorization: `Token ${token}` } }),
        call(`${server.url}/forward-auth`, { headers: { authorization: `Bearer ${token}` } }),
        call(`${server.url}/introspect`, {
          body: new URLSearchParams({ token }).toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${INTROSPECTION}` },
        }),
      ]);
      assert.equal(introspect.status, 200);
      if (forward.status === 200) assert.equal(forward.headers.get('x-auth-username'), 'neo');
      // Introspection answers 200 either way; `active` carries the verdict, shown here as a status.
      const introspected = introspect.body.active ? 200 : 401;
      return [userinfoBearer.status, userinfoToken.status, verify.status, protectedRoute.status, forward.status, introspected];
    }

    it('a token from any API is accepted by every verification path on every instance', async () => {
      const tokens = await tokensFromEveryApi(a);
      for (const token of [tokens.wikimedia, tokens.roypi, tokens.ziik]) {
        assert.deepEqual(await verdicts(a, token), [200, 200, 200, 200, 200, 200]);
        assert.deepEqual(await verdicts(b, token), [200, 200, 200, 200, 200, 200]);
      }
    });

    it('userinfo answers the claims of the token', async () => {
      const { ziik } = await tokensFromEveryApi(a);
      const reply = await call(`${b.url}/userinfo`, { headers: { authorization: `Bearer ${ziik}` } });
      assert.equal(reply.body.username, 'neo');
      assert.equal(reply.body.email, 'neo@example.com');
      assert.equal(typeof reply.body.sub, 'string');
      const missing = await call(`${b.url}/userinfo`);
      assert.equal(missing.status, 401);
      assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
    });

    /** Another instance hears of a change within a second (verify-cache.test.ts); poll, never time. */
    async function eventuallyVerdicts(server: TestServer, token: string, expected: number[]) {
      const until = Date.now() + 10_000;
      let seen = await verdicts(server, token);
      while (JSON.stringify(seen) !== JSON.stringify(expected) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 25));
        seen = await verdicts(server, token);
      }
      assert.deepEqual(seen, expected);
    }

    it('token-revoke on one instance is seen at once there and by every path on the other', async () => {
      const tokens = await tokensFromEveryApi(a);
      assert.equal((await post(`${a.url}/v1/token-revoke`, { refresh_token: tokens.refresh })).status, 204);
      assert.deepEqual(await verdicts(a, tokens.wikimedia), [401, 401, 400, 401, 401, 401]);
      await eventuallyVerdicts(b, tokens.wikimedia, [401, 401, 400, 401, 401, 401]);
      // The other logins are separate sessions and live on.
      assert.deepEqual(await verdicts(b, tokens.roypi), [200, 200, 200, 200, 200, 200]);
    });

    it('admin sign-out everywhere kills the tokens of every API on every instance', async () => {
      const tokens = await tokensFromEveryApi(b);
      const reply = await post(`${a.url}/admin/users/neo/sign-out`, {}, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(reply.status, 200);
      assert.ok(reply.body.revoked_sessions >= 3);
      for (const token of [tokens.wikimedia, tokens.roypi, tokens.ziik]) {
        assert.deepEqual(await verdicts(a, token), [401, 401, 400, 401, 401, 401]);
        await eventuallyVerdicts(b, token, [401, 401, 400, 401, 401, 401]);
      }
    });

    it('introspection needs its own bearer token and says active: false for junk', async () => {
      const { roypi } = await tokensFromEveryApi(a);
      assert.equal((await post(`${a.url}/introspect`, { token: roypi })).status, 401);
      assert.equal((await post(`${a.url}/introspect`, { token: roypi }, { authorization: `Bearer ${ADMIN_TOKEN}` })).status, 401);
      const junk = await post(`${a.url}/introspect`, { token: 'junk' }, { authorization: `Bearer ${INTROSPECTION}` });
      assert.deepEqual(junk.body, { active: false });
      const live = await post(`${a.url}/introspect`, { token: roypi }, { authorization: `Bearer ${INTROSPECTION}` });
      assert.equal(live.body.active, true);
      assert.equal(live.body.username, 'neo');
      assert.equal(live.body.token_type, 'access_token');
      const discovery = (await call(`${a.url}/.well-known/openid-configuration`)).body;
      assert.equal(discovery.introspection_endpoint, 'https://auth.example.test/introspect');
    });

    it('an ID token is not an access token', async () => {
      const login = await post(`${a.url}/v1/login`, { username: 'neo', password: PASSWORD });
      assert.deepEqual(await verdicts(a, login.body.id_token), [401, 401, 400, 401, 401, 401]);
    });

    it('the JWKS verifies tokens offline, and a rotated key keeps old tokens verifiable', async () => {
      const { createLocalJWKSet, jwtVerify } = await import('jose');
      const before = await tokensFromEveryApi(a);
      const oldKid = JSON.parse(Buffer.from(before.ziik.split('.')[0], 'base64url').toString()).kid;
      const newKid = await a.core.keys.rotate();
      // Published at once, signing only once every cached JWKS can know it.
      const early = await tokensFromEveryApi(a);
      assert.equal(JSON.parse(Buffer.from(early.ziik.split('.')[0], 'base64url').toString()).kid, oldKid);
      for (const server of [a, b]) server.clock.advance(PUBLISH_AHEAD_MS / 1000 + 1);
      const after = await tokensFromEveryApi(b); // b learns the new key from the store
      assert.equal(JSON.parse(Buffer.from(after.roypi.split('.')[0], 'base64url').toString()).kid, newKid);
      const jwks = (await call(`${b.url}/.well-known/jwks.json`)).body;
      assert.deepEqual(jwks.keys.map((k: { kid: string }) => k.kid).sort(), [oldKid, newKid].sort());
      for (const key of jwks.keys) assert.equal(key.d, undefined, 'no private part in the JWKS');
      const keySet = createLocalJWKSet(jwks);
      const discovery = (await call(`${b.url}/.well-known/openid-configuration`)).body;
      for (const token of [before.wikimedia, after.roypi, after.ziik]) {
        const { payload } = await jwtVerify(token, keySet, { issuer: discovery.issuer });
        assert.equal(payload.username, 'neo');
      }
    });
  });
}
