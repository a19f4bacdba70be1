// Renewal stays inside its API: a session keeps the rules of the API that opened it for its
// whole life. Roypi's refresh_token/ and Ziik's renew only renew their own API's sessions, a /v1
// session only renews through /v1/token-refresh; yet every verification path accepts them all.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { randomId, randomToken, sha256 } from '../src/core/secrets.ts';
import { ENGINES, startServer, call, post, createUser, decodeJwt, type TestServer } from './helpers.ts';

const DAY = 86400;
const HOUR = 3600;
const PASSWORD = 'scope-password-1';

for (const engine of ENGINES) {
  describe(`renewal stays inside its API on ${engine.name}`, () => {
    let server: TestServer;

    before(async () => {
      server = await startServer(engine);
      // Frozen, so `later(30 * DAY - 1)` is a second before the end however long the renewals take.
      server.clock.freeze();
    });
    after(() => server.close());

    /** A user of the test's own: no test sees another's sessions, password or lockout counts. */
    const newUser = async () => {
      const username = `scoped_${crypto.randomBytes(4).toString('hex')}`;
      return createUser(server, { username, email: `${username}@example.com`, password: PASSWORD });
    };
    type User = Awaited<ReturnType<typeof newUser>>;

    /** Moves the server's clock for the body only. */
    async function later<T>(seconds: number, body: () => Promise<T>): Promise<T> {
      server.clock.advance(seconds);
      try {
        return await body();
      } finally {
        server.clock.advance(-seconds);
      }
    }

    const v1Login = async (user: User) => (await post(`${server.url}/v1/login`, { username: user.username, password: PASSWORD })).body;
    const roypiLogin = async (user: User) => (await post(`${server.url}/auth/access_token/`, { username: user.username, password: PASSWORD })).body.access_token as string;
    const ziikLogin = async (user: User) => (await post(`${server.url}/api/authenticate`, { username: user.email, password: PASSWORD })).body[0].jwt as string;
    const roypiRefresh = (token: string) => post(`${server.url}/auth/refresh_token/`, { token });
    const ziikRenew = (token: string, method: 'GET' | 'POST' = 'GET') =>
      call(`${server.url}/api/renew`, { method, headers: { authorization: `Bearer ${token}` } });

    function assertRoypiRefused(reply: { status: number; body: any }) {
      assert.equal(reply.status, 400, reply.body && JSON.stringify(reply.body));
      assert.deepEqual(Object.keys(reply.body), ['non_field_errors']);
      assert.equal(reply.body.non_field_errors.length, 1);
    }
    function assertZiikRefused(reply: { status: number; body: any; headers: Headers }) {
      assert.equal(reply.status, 401, reply.body && JSON.stringify(reply.body));
      assert.equal(reply.body.message, 'Unauthenticated.');
      assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer/);
    }

    it('a /v1 access token cannot be renewed by /auth/refresh_token/ or /api/renew', async () => {
      const user = await newUser();
      const { access_token } = await v1Login(user);
      assertRoypiRefused(await roypiRefresh(access_token));
      assertZiikRefused(await ziikRenew(access_token, 'GET'));
      assertZiikRefused(await ziikRenew(access_token, 'POST'));
      // Still a good token everywhere it is only checked.
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${access_token}` } })).status, 200);
      assert.equal((await post(`${server.url}/auth/verify_token/`, { token: access_token })).status, 200);
    });

    it('a chain of /api/renew cannot keep a /v1 session alive past its own token', async () => {
      const user = await newUser();
      const { access_token } = await v1Login(user);
      // Before the fix, renewing every 23 hours kept it alive for 90 days.
      const renewed = await later(23 * HOUR, () => ziikRenew(access_token));
      assertZiikRefused(renewed);
      await later(DAY + 1, async () => {
        assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${access_token}` } })).status, 401);
      });
    });

    it('Roypi and Ziik tokens are not renewed by each other', async () => {
      const user = await newUser();
      const roypi = await roypiLogin(user);
      const ziik = await ziikLogin(user);
      assertZiikRefused(await ziikRenew(roypi));
      assertRoypiRefused(await roypiRefresh(ziik));
      // Each still renews on its own path.
      assert.equal((await roypiRefresh(roypi)).status, 200);
      assert.equal((await ziikRenew(ziik)).status, 200);
    });

    it('an ID token is refused by every renew path and by change-password', async () => {
      const user = await newUser();
      const { id_token } = await v1Login(user);
      assertRoypiRefused(await roypiRefresh(id_token));
      assertZiikRefused(await ziikRenew(id_token));
      const change = await post(`${server.url}/v1/change-password`, {
        access_token: id_token,
        previous_password: PASSWORD,
        proposed_password: 'never-applied-1',
      });
      assert.equal(change.status, 401);
      assert.equal((await v1Login(user)).access_token !== undefined, true, 'the password did not change');
    });

    it('Roypi refresh keeps orig_iat and stops 10 days after the original login, on both sides', async () => {
      const user = await newUser();
      const first = await roypiLogin(user);
      const origIat = decodeJwt(first).orig_iat;
      let token = first;
      // Refresh every 4 days (the token lives 5) up to just before day 10.
      for (const at of [4 * DAY, 8 * DAY]) {
        const reply = await later(at, () => roypiRefresh(token));
        assert.equal(reply.status, 200);
        token = reply.body.token;
        assert.equal(decodeJwt(token).orig_iat, origIat);
      }
      const justBefore = await later(10 * DAY - 2, () => roypiRefresh(token));
      assert.equal(justBefore.status, 200);
      assert.equal(decodeJwt(justBefore.body.token).orig_iat, origIat);
      const justAfter = await later(10 * DAY + 1, () => roypiRefresh(justBefore.body.token));
      assert.deepEqual(justAfter.body, { non_field_errors: ['Refresh has expired.'] });
    });

    it('Ziik renew keeps a login alive 30 days and not a second more', async () => {
      const user = await newUser();
      let token = await ziikLogin(user);
      let at = 0;
      // Renew every 23 hours, up to the last renewal before day 30.
      while (at + 23 * HOUR < 30 * DAY - 1) {
        at += 23 * HOUR;
        const reply = await later(at, () => ziikRenew(token));
        assert.equal(reply.status, 200, `renewal at ${at / HOUR} h`);
        token = reply.body[0].jwt;
      }
      assert.equal((await later(30 * DAY - 1, () => ziikRenew(token))).status, 200);
      assertZiikRefused(await later(30 * DAY + 1, () => ziikRenew(token)));
    });

    it('/v1 refresh tokens only work for /v1 sessions, for refresh and revoke alike', async () => {
      const user = await newUser();
      // Only /v1 hands out refresh tokens; a session of another API that somehow had one is still refused.
      const refreshToken = randomToken();
      const now = server.clock.now();
      const sessionId = randomId();
      await server.core.store.insertSession({
        id: sessionId,
        user_id: user.id,
        refresh_token_hash: sha256(refreshToken),
        dialect: 'roypi',
        refresh_count: 0,
        created_at: now,
        expires_at: now + 10 * DAY * 1000,
        revoked_at: null,
        last_used_at: now,
        ip: null,
        user_agent: null,
      });
      const refreshed = await post(`${server.url}/v1/token-refresh`, { username: user.username, refresh_token: refreshToken });
      assert.deepEqual([refreshed.status, refreshed.body], [401, { status: 401, message: 'Unauthorized.' }]);
      const revoked = await post(`${server.url}/v1/token-revoke`, { refresh_token: refreshToken });
      assert.deepEqual([revoked.status, revoked.body], [401, { status: 401, message: 'Unauthorized.' }]);
      assert.equal((await server.core.store.sessionById(sessionId))?.revoked_at, null);
      // A /v1 refresh token itself still works.
      const { refresh_token } = await v1Login(user);
      assert.equal((await post(`${server.url}/v1/token-refresh`, { username: user.username, refresh_token })).status, 200);
    });

    it('change-password takes an access token of any API and keeps that session', async () => {
      const user = await newUser();
      const roypi = await roypiLogin(user);
      const ziik = await ziikLogin(user);
      const change = await post(`${server.url}/v1/change-password`, {
        access_token: roypi,
        previous_password: PASSWORD,
        proposed_password: 'scope-password-2',
      });
      assert.equal(change.status, 204, change.text);
      assert.equal((await post(`${server.url}/auth/verify_token/`, { token: roypi })).status, 200);
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${ziik}` } })).status, 401);
      // The kept session still keeps its own API's rules.
      assertZiikRefused(await ziikRenew(roypi));
      const back = await post(`${server.url}/v1/change-password`, {
        access_token: roypi,
        previous_password: 'scope-password-2',
        proposed_password: PASSWORD,
      });
      assert.equal(back.status, 204);
    });
  });
}
