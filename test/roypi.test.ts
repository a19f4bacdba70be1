// The Roypi API (/auth) as its docs describe it, over real HTTP, on each store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, call, createUser, decodeJwt, type TestServer } from './helpers.ts';

const ISO_MS_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const DAY = 86400;

// Exactly the headers of the documented requests.
const roypiPost = (url: string, body: unknown) =>
  call(url, { body: JSON.stringify(body), headers: { 'content-type': 'application/json; charset=utf-8' } });

function assertNonField(reply: { status: number; body: any }, message: string) {
  assert.equal(reply.status, 400, JSON.stringify(reply.body));
  assert.deepEqual(reply.body, { non_field_errors: [message] });
}

for (const engine of ENGINES) {
  describe(`/auth on ${engine.name}`, () => {
    let server: TestServer;
    let auth: string;
    let userId: number;

    before(async () => {
      server = await startServer(engine);
      auth = `${server.url}/auth`;
      // The credentials of the documented example.
      userId = (await createUser(server, { username: 'indestructible', email: 't800@example.com', password: 'terminator123' })).id;
    });
    after(() => server.close());

    const login = () => roypiPost(`${auth}/access_token/`, { username: 'indestructible', password: 'terminator123' });

    it('access_token/ answers {access_token, expires_in, user} with a 5-day ISO expiry', async () => {
      const reply = await login();
      assert.equal(reply.status, 200);
      assert.deepEqual(Object.keys(reply.body).sort(), ['access_token', 'expires_in', 'user']);
      assert.equal(reply.body.user, 'indestructible');
      assert.match(reply.body.expires_in, ISO_MS_Z);
      const claims = decodeJwt(reply.body.access_token);
      assert.equal(claims.exp - claims.iat, 5 * DAY);
      assert.equal(new Date(reply.body.expires_in).getTime(), claims.exp * 1000);
      assert.equal(claims.user_id, userId);
      assert.equal(claims.username, 'indestructible');
      assert.equal(claims.email, 't800@example.com');
      assert.equal(claims.orig_iat, claims.iat);
    });

    it('bad credentials and missing fields answer in DRF shapes', async () => {
      assertNonField(
        await roypiPost(`${auth}/access_token/`, { username: 'indestructible', password: 'nope' }),
        'Unable to log in with provided credentials.',
      );
      const missing = await roypiPost(`${auth}/access_token/`, {});
      assert.equal(missing.status, 400);
      assert.deepEqual(missing.body, { username: ['This field is required.'], password: ['This field is required.'] });
      const blank = await roypiPost(`${auth}/access_token/`, { username: '', password: 'x' });
      assert.deepEqual(blank.body, { username: ['This field may not be blank.'] });
      const tokenMissing = await roypiPost(`${auth}/verify_token/`, {});
      assert.deepEqual(tokenMissing.body, { token: ['This field is required.'] });
      const malformed = await call(`${auth}/verify_token/`, { body: '{', headers: { 'content-type': 'application/json' } });
      assert.equal(malformed.status, 400);
      assert.equal(typeof malformed.body.detail, 'string');
    });

    it('refresh_token/ gives a new exp, keeps orig_iat, and answers {token, expires_in, user}', async () => {
      const first = (await login()).body.access_token;
      server.clock.advance(DAY);
      try {
        const reply = await roypiPost(`${auth}/refresh_token/`, { token: first });
        assert.equal(reply.status, 200);
        assert.deepEqual(Object.keys(reply.body).sort(), ['expires_in', 'token', 'user']);
        assert.deepEqual(reply.body.user, { username: 'indestructible', id: userId });
        assert.match(reply.body.expires_in, ISO_MS_Z);
        const before = decodeJwt(first);
        const after = decodeJwt(reply.body.token);
        assert.ok(after.exp > before.exp);
        assert.equal(after.orig_iat, before.orig_iat);
      } finally {
        server.clock.advance(-DAY);
      }
    });

    it('only unexpired tokens refresh, and never past 10 days from the original login', async () => {
      const first = (await login()).body.access_token;
      server.clock.advance(5 * DAY + 1);
      try {
        assertNonField(await roypiPost(`${auth}/refresh_token/`, { token: first }), 'Signature has expired.');
      } finally {
        server.clock.advance(-(5 * DAY + 1));
      }
      let token = first;
      for (let day = 4; day <= 8; day += 4) {
        server.clock.advance(4 * DAY);
        token = (await roypiPost(`${auth}/refresh_token/`, { token })).body.token;
        assert.ok(token, `refresh on day ${day}`);
      }
      server.clock.advance(2 * DAY + 1); // day 10 and a second
      try {
        assertNonField(await roypiPost(`${auth}/refresh_token/`, { token }), 'Refresh has expired.');
      } finally {
        server.clock.advance(-(10 * DAY + 1));
      }
    });

    it('a token refreshed late in the window outlives the window, and the sweeper leaves it alone', async () => {
      let token = (await login()).body.access_token;
      try {
        for (const _ of [4, 8]) {
          server.clock.advance(4 * DAY);
          token = (await roypiPost(`${auth}/refresh_token/`, { token })).body.token;
        }
        server.clock.advance(3 * DAY); // day 11: the window has closed; the token lives to day 13
        await server.core.sweep();
        assert.ok((await server.core.users.events({ username: 'indestructible' })).length > 0, 'recent audit events survive the sweep');
        const verified = await roypiPost(`${auth}/verify_token/`, { token });
        assert.equal(verified.status, 200, verified.text);
        assertNonField(await roypiPost(`${auth}/refresh_token/`, { token }), 'Refresh has expired.');
      } finally {
        server.clock.advance(-11 * DAY);
      }
    });

    it('verify_token/ answers 200 with the token, or 400 saying why', async () => {
      const token = (await login()).body.access_token;
      const ok = await roypiPost(`${auth}/verify_token/`, { token });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.token, token);
      assert.deepEqual(ok.body.user, { username: 'indestructible', id: userId });
      assert.equal(new Date(ok.body.expires_in).getTime(), decodeJwt(token).exp * 1000);

      assertNonField(await roypiPost(`${auth}/verify_token/`, { token: 'eyJhbGciOiJ.eyJ1c2VybmFtZSI6IllbWFpbmVt02M4ODExOTQ2fQ.462gbEfvxuH24' }), 'Error decoding signature.');
      const [h, p, s] = token.split('.');
      const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
      assertNonField(await roypiPost(`${auth}/verify_token/`, { token: flipped }), 'Error decoding signature.');

      server.clock.advance(5 * DAY + 1);
      try {
        assertNonField(await roypiPost(`${auth}/verify_token/`, { token }), 'Signature has expired.');
      } finally {
        server.clock.advance(-(5 * DAY + 1));
      }
    });

    it('verify_token/ refuses tokens of disabled and deleted users', async () => {
      const user = await createUser(server, { username: 'skynet', email: 'skynet@example.com', password: 'judgement-day' });
      const token = (await roypiPost(`${auth}/access_token/`, { username: 'skynet', password: 'judgement-day' })).body.access_token;
      await server.core.users.disable({ id: user.id });
      assertNonField(await roypiPost(`${auth}/verify_token/`, { token }), 'User account is disabled.');
      await server.core.users.enable({ id: user.id });
      // Enabling again does not bring the sessions that disabling ended back.
      assertNonField(await roypiPost(`${auth}/verify_token/`, { token }), 'Token has been revoked.');
      const fresh = (await roypiPost(`${auth}/access_token/`, { username: 'skynet', password: 'judgement-day' })).body.access_token;
      await server.core.users.remove({ id: user.id });
      assertNonField(await roypiPost(`${auth}/verify_token/`, { token: fresh }), "User doesn't exist.");
    });

    it('protected routes take Authorization: Token and answer 401 {detail} with the Token challenge', async () => {
      const token = (await login()).body.access_token;
      const ok = await call(`${auth}/user/`, { headers: { authorization: `Token ${token}` } });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.username, 'indestructible');
      const none = await call(`${auth}/user/`);
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Token realm="api"');
      assert.deepEqual(none.body, { detail: 'Authentication credentials were not provided.' });
      const bad = await call(`${auth}/user/`, { headers: { authorization: 'Token not.a.jwt' } });
      assert.equal(bad.status, 401);
      assert.equal(bad.headers.get('www-authenticate'), 'Token realm="api"');
      assert.deepEqual(bad.body, { detail: 'Error decoding signature.' });
    });

    it('a user who must change their password is told so, not given a token', async () => {
      await createUser(server, { username: 'newbie', email: 'newbie@example.com', temporary_password: 'temporary-123' });
      assertNonField(
        await roypiPost(`${auth}/access_token/`, { username: 'newbie', password: 'temporary-123' }),
        'The password must be changed before signing in.',
      );
    });
  });
}
