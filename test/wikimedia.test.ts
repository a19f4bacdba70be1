// The Wikimedia Enterprise API (/v1) as its docs describe it, over real HTTP, on each store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, startMailbox, post, call, createUser, decodeJwt, ADMIN_TOKEN, type TestServer, type Mailbox } from './helpers.ts';

const PASSWORD = 'correct-horse-battery';

function assertError(reply: { status: number; body: any }, status: number, message?: string) {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.deepEqual(Object.keys(reply.body).sort(), ['message', 'status']);
  assert.equal(reply.body.status, status);
  assert.equal(typeof reply.body.message, 'string');
  if (message) assert.equal(reply.body.message, message);
}

function codeFrom(text: string): string {
  const match = /Confirmation code: (\d{6})/.exec(text);
  assert.ok(match, `no code in: ${text}`);
  return match[1];
}

for (const engine of ENGINES) {
  describe(`/v1 on ${engine.name}`, () => {
    let server: TestServer;
    let mailbox: Mailbox;
    let v1: string;

    before(async () => {
      mailbox = await startMailbox();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, LATCHKEY_LOCKOUT_THRESHOLD: '5' });
      v1 = `${server.url}/v1`;
      // The user most tests sign in as; a test that changes a user makes its own.
      await createUser(server, { username: 'ada', email: 'ada@example.com', password: PASSWORD });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });

    const login = (username: string, password = PASSWORD) => post(`${v1}/login`, { username, password });

    it('login answers the documented token set, case-insensitively by username', async () => {
      const reply = await login('ADA');
      assert.equal(reply.status, 200);
      assert.deepEqual(Object.keys(reply.body).sort(), ['access_token', 'expires_in', 'id_token', 'refresh_token']);
      assert.equal(reply.body.expires_in, 86400);
      assert.match(reply.headers.get('content-type')!, /application\/json/);
      assert.equal(reply.headers.get('cache-control'), 'no-store');
      const access = decodeJwt(reply.body.access_token);
      const id = decodeJwt(reply.body.id_token);
      assert.equal(access.token_use, 'access');
      assert.equal(id.token_use, 'id');
      assert.equal(id.email, 'ada@example.com');
      assert.equal(access.username, 'ada');
      assert.equal(access.exp - access.iat, 86400);
      const header = JSON.parse(Buffer.from(reply.body.access_token.split('.')[0], 'base64url').toString());
      assert.equal(header.alg, 'EdDSA');
      assert.ok(header.kid);
      // The refresh token is opaque, not a JWT, and never stored in the clear.
      assert.equal(reply.body.refresh_token.split('.').length, 1);
    });

    it('wrong password and unknown user get the same 401', async () => {
      assertError(await login('ada', 'not-the-password'), 401, 'Incorrect username or password.');
      assertError(await login('nobody-here'), 401, 'Incorrect username or password.');
    });

    it('missing fields, wrong types and malformed JSON get 422 in the error shape', async () => {
      assertError(await post(`${v1}/login`, { username: 'ada' }), 422, 'password is required');
      assertError(await post(`${v1}/login`, { username: 'ada', password: 42 }), 422, 'password must be a string');
      assertError(await call(`${v1}/login`, { body: '{"username":', headers: { 'content-type': 'application/json' } }), 422, 'Request body is not valid JSON.');
      // An empty body is an empty object (README, "Request bodies"), so it names what is missing.
      assertError(await call(`${v1}/login`, { body: '', headers: { 'content-type': 'application/json' } }), 422, 'username is required; password is required');
      assertError(await post(`${v1}/login`, ['ada', PASSWORD]), 422, 'Request body must be a JSON object.');
    });

    it('unknown paths get 404 in the same shape; CORS is open', async () => {
      assertError(await post(`${v1}/no-such-thing`, {}), 404, 'Not Found.');
      const preflight = await call(`${v1}/login`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
      const reply = await call(`${v1}/login`, { json: { username: 'ada', password: PASSWORD }, headers: { origin: 'https://app.example' } });
      assert.equal(reply.headers.get('access-control-allow-origin'), '*');
    });

    it('token-refresh gives new access and ID tokens and no new refresh token', async () => {
      const { body } = await login('ada');
      const reply = await post(`${v1}/token-refresh`, { username: 'Ada', refresh_token: body.refresh_token });
      assert.equal(reply.status, 200);
      assert.deepEqual(Object.keys(reply.body).sort(), ['access_token', 'expires_in', 'id_token']);
      assert.equal(reply.body.expires_in, 86400);
      assert.equal(decodeJwt(reply.body.access_token).sid, decodeJwt(body.access_token).sid);
      assertError(await post(`${v1}/token-refresh`, { username: 'someone-else', refresh_token: body.refresh_token }), 401, 'Unauthorized.');
      assertError(await post(`${v1}/token-refresh`, { username: 'ada', refresh_token: 'made-up' }), 401, 'Unauthorized.');
    });

    it('token-refresh stops at 90 access tokens per refresh token with 429', async () => {
      const { body } = await login('ada');
      const refresh = () => post(`${v1}/token-refresh`, { username: 'ada', refresh_token: body.refresh_token });
      // Fire them concurrently: the cap must hold under a race too.
      const replies = await Promise.all(Array.from({ length: 95 }, refresh));
      const ok = replies.filter((r) => r.status === 200).length;
      assert.equal(ok, 90);
      for (const reply of replies.filter((r) => r.status !== 200)) {
        assertError(reply, 429, 'Refresh tokens limit has been exceeded.');
      }
    });

    it('refresh tokens expire after 90 days', async () => {
      const { body } = await login('ada');
      server.clock.advance(90 * 86400 + 1);
      try {
        assertError(await post(`${v1}/token-refresh`, { username: 'ada', refresh_token: body.refresh_token }), 401);
      } finally {
        server.clock.advance(-(90 * 86400 + 1));
      }
    });

    it('token-revoke answers 204 and kills the refresh token and every access token of its session', async () => {
      const { body } = await login('ada');
      const refreshed = await post(`${v1}/token-refresh`, { username: 'ada', refresh_token: body.refresh_token });
      const other = await login('ada');
      for (const token of [body.access_token, refreshed.body.access_token]) {
        assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      }
      const revoked = await post(`${v1}/token-revoke`, { refresh_token: body.refresh_token });
      assert.equal(revoked.status, 204);
      assert.equal(revoked.text, '');
      for (const token of [body.access_token, refreshed.body.access_token]) {
        assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
      }
      assertError(await post(`${v1}/token-refresh`, { username: 'ada', refresh_token: body.refresh_token }), 401);
      // Another login's session is untouched.
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${other.body.access_token}` } })).status, 200);
      assertError(await post(`${v1}/token-revoke`, { refresh_token: 'never-issued' }), 401);
    });

    it('a temporary password answers NEW_PASSWORD_REQUIRED; the session works once for 3 minutes', async () => {
      await createUser(server, { username: 'grace', email: 'grace@example.com', temporary_password: 'Temporary-1' });
      assertError(await login('grace', 'wrong-temporary'), 401, 'Incorrect username or password.');
      const challenge = await login('grace', 'Temporary-1');
      assert.equal(challenge.status, 200);
      assert.deepEqual(Object.keys(challenge.body).sort(), ['challenge_name', 'session']);
      assert.equal(challenge.body.challenge_name, 'NEW_PASSWORD_REQUIRED');
      const answer = (session: string, new_password = 'grace-new-password') =>
        post(`${v1}/new-password-required`, { session, username: 'grace', new_password });

      assertError(await answer(challenge.body.session, 'short'), 400, 'Password does not conform to policy: Password must be at least 8 characters long.');
      assertError(await answer('not-a-session'), 401, 'Unauthorized.');
      const done = await answer(challenge.body.session);
      assert.equal(done.status, 200);
      assert.deepEqual(Object.keys(done.body).sort(), ['access_token', 'expires_in', 'id_token', 'refresh_token']);
      assertError(await answer(challenge.body.session), 401, 'Unauthorized.');
      assert.equal((await login('grace', 'grace-new-password')).body.access_token !== undefined, true);
      assertError(await login('grace', 'Temporary-1'), 401);

      await createUser(server, { username: 'hedy', email: 'hedy@example.com', temporary_password: 'Temporary-2' });
      const late = await login('hedy', 'Temporary-2');
      server.clock.advance(181);
      try {
        const reply = await post(`${v1}/new-password-required`, { session: late.body.session, username: 'hedy', new_password: 'hedy-new-password' });
        assertError(reply, 401);
      } finally {
        server.clock.advance(-181);
      }
    });

    it('forgot-password mails a code; confirm sets the password and ends every session', { timeout: 20_000 }, async () => {
      await createUser(server, { username: 'linus', email: 'linus@example.com', password: PASSWORD });
      const session = await login('linus');
      const received = mailbox.messages.length;
      // The answer does not wait for the mail: it comes while the mail server still holds the message.
      const release = mailbox.hold();
      const asked = await post(`${v1}/forgot-password`, { username: 'LINUS' });
      assert.equal(asked.status, 204);
      assert.equal(asked.text, '');
      assert.equal(mailbox.messages.length, received);
      release();
      const mail = await mailbox.next('linus@example.com');
      assert.match(mail.subject ?? '', /reset/i);
      assert.ok(mail.html, 'has an HTML part');
      const code = codeFrom(mail.text ?? '');
      assert.ok((mail.html as string).includes(code));

      assertError(await post(`${v1}/forgot-password-confirm`, { username: 'linus', password: 'linus-new-pass', confirmation_code: '000000' === code ? '111111' : '000000' }), 401, 'Invalid verification code provided, please try again.');
      assertError(await post(`${v1}/forgot-password-confirm`, { username: 'linus', password: 'short', confirmation_code: code }), 400, 'Password does not conform to policy: Password must be at least 8 characters long.');
      const confirmed = await post(`${v1}/forgot-password-confirm`, { username: 'linus', password: 'linus-new-pass', confirmation_code: code });
      assert.equal(confirmed.status, 204);
      assertError(await post(`${v1}/forgot-password-confirm`, { username: 'linus', password: 'linus-other-pass', confirmation_code: code }), 401);
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${session.body.access_token}` } })).status, 401);
      assertError(await post(`${v1}/token-refresh`, { username: 'linus', refresh_token: session.body.refresh_token }), 401);
      assert.equal((await login('linus', 'linus-new-pass')).status, 200);
    });

    it('forgot-password for an unknown user answers the same 204 and sends nothing', async () => {
      const before = mailbox.messages.length;
      assert.equal((await post(`${v1}/forgot-password`, { username: 'ghost' })).status, 204);
      await server.core.background.drain();
      assert.equal(mailbox.messages.length, before);
    });

    it('a code takes 5 wrong tries from one address, then that address waits; a code lives an hour', async () => {
      await createUser(server, { username: 'barbara', email: 'barbara@example.com', password: PASSWORD });
      await post(`${v1}/forgot-password`, { username: 'barbara' });
      const code = codeFrom((await mailbox.next('barbara@example.com')).text ?? '');
      const wrong = code === '123456' ? '654321' : '123456';
      for (let i = 0; i < 5; i++) {
        assertError(await post(`${v1}/forgot-password-confirm`, { username: 'barbara', password: 'barbara-new-pass', confirmation_code: wrong }), 401, 'Invalid verification code provided, please try again.');
      }
      const refused = await post(`${v1}/forgot-password-confirm`, { username: 'barbara', password: 'barbara-new-pass', confirmation_code: code });
      assertError(refused, 429, 'Attempt limit exceeded, please try after some time.');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);

      // An hour on, the address may guess again, but the code has expired.
      server.clock.advance(3601);
      try {
        assertError(await post(`${v1}/forgot-password-confirm`, { username: 'barbara', password: 'barbara-new-pass', confirmation_code: code }), 401, 'Invalid verification code provided, please try again.');
        await post(`${v1}/forgot-password`, { username: 'barbara' });
        const second = codeFrom((await mailbox.next('barbara@example.com')).text ?? '');
        server.clock.advance(3599);
        assert.equal((await post(`${v1}/forgot-password-confirm`, { username: 'barbara', password: 'barbara-new-pass', confirmation_code: second })).status, 204);
      } finally {
        server.clock.advance(-3601 - 3599);
      }
    });

    it('concurrent guesses cannot beat the attempt limits', async () => {
      await createUser(server, { username: 'eve-target', email: 'eve-target@example.com', password: PASSWORD });
      await post(`${v1}/forgot-password`, { username: 'eve-target' });
      const code = codeFrom((await mailbox.next('eve-target@example.com')).text ?? '');
      const wrong = code === '123456' ? '654321' : '123456';
      const guesses = await Promise.all(
        Array.from({ length: 20 }, () =>
          post(`${v1}/forgot-password-confirm`, { username: 'eve-target', password: 'eve-new-password', confirmation_code: wrong }),
        ),
      );
      assert.equal(guesses.filter((g) => g.status === 401).length, 5);
      assert.equal(guesses.filter((g) => g.status === 429).length, 15);
      assertError(await post(`${v1}/forgot-password-confirm`, { username: 'eve-target', password: 'eve-new-password', confirmation_code: code }), 429);

      const logins = await Promise.all(Array.from({ length: 20 }, (_, i) => login('eve-target', `guess-${i}`)));
      assert.equal(logins.filter((r) => r.status === 401).length, 5);
      assert.equal(logins.filter((r) => r.status === 429).length, 15);
    });

    it('change-password checks the old password and the policy, and ends the other sessions', async () => {
      await createUser(server, { username: 'ken', email: 'ken@example.com', password: PASSWORD });
      const mine = await login('ken');
      const other = await login('ken');
      const change = (previous_password: string, proposed_password: string, access_token = mine.body.access_token) =>
        post(`${v1}/change-password`, { access_token, previous_password, proposed_password });
      assertError(await change('wrong-password', 'ken-new-password'), 401, 'Incorrect username or password.');
      assertError(await change(PASSWORD, 'ken-new-password', 'not-a-token'), 401, 'Unauthorized.');
      assertError(await change(PASSWORD, 'short'), 400, 'Password does not conform to policy: Password must be at least 8 characters long.');
      assert.equal((await change(PASSWORD, 'ken-new-password')).status, 204);
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${mine.body.access_token}` } })).status, 200);
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Token ${other.body.access_token}` } })).status, 401);
      assertError(await login('ken'), 401);
      assert.equal((await login('ken', 'ken-new-password')).status, 200);
    });

    it('locks a username out after repeated failures, with 429 and Retry-After', async () => {
      await createUser(server, { username: 'mallory-target', email: 'target@example.com', password: PASSWORD });
      for (let i = 0; i < 5; i++) assertError(await login('mallory-target', `guess-${i}`), 401);
      const locked = await login('mallory-target');
      assertError(locked, 429, 'Password attempts exceeded.');
      assert.ok(Number(locked.headers.get('retry-after')) > 0);
    });

    it('disabled users cannot log in and their tokens stop working', async () => {
      const user = await createUser(server, { username: 'margaret', email: 'margaret@example.com', password: PASSWORD });
      const session = await login('margaret');
      await post(`${server.url}/admin/user-ids/${user.id}/disable`, {}, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assertError(await login('margaret'), 401, 'User is disabled.');
      const info = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${session.body.access_token}` } });
      assert.deepEqual([info.status, info.body], [401, { error: 'invalid_token', error_description: 'The user is disabled.' }]);
    });
  });
}
