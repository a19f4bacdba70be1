// Disabled and externally managed users on every path: login on the three APIs, refresh,
// renew, verification, userinfo, reset request and confirm, change-password. Each refusal
// is checked by its exact body, in its API's shape.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, ADMIN_TOKEN, startServer, startMailbox, post, call, createUser, type TestServer, type Mailbox } from './helpers.ts';

const INTROSPECTION = 'introspection-token-0123456789abcdefghij';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

for (const engine of ENGINES) {
  describe(`disabled and external users on ${engine.name}`, () => {
    let server: TestServer;
    let mailbox: Mailbox;

    before(async () => {
      mailbox = await startMailbox();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });

    const bearer = (token: string, scheme = 'Bearer') => ({ headers: { authorization: `${scheme} ${token}` } });
    /** Asks for both kinds of reset mail, and says whether any arrived. */
    async function resetMailsFor(username: string, email: string) {
      const before = mailbox.attempts;
      assert.equal((await post(`${server.url}/v1/forgot-password`, { username })).status, 204);
      assert.equal((await post(`${server.url}/api/password/request`, { email })).status, 204);
      await server.core.background.drain();
      return mailbox.attempts - before;
    }

    it('a disabled user is refused on every path, with tokens, codes and links from before', async () => {
      const username = 'dora';
      const email = 'dora@example.com';
      const password = 'dora-password';
      await createUser(server, { username, email, password });
      // Everything an active user can hold: a token from each API, a reset code and a reset link.
      const v1 = (await post(`${server.url}/v1/login`, { username, password })).body;
      const roypi = (await post(`${server.url}/auth/access_token/`, { username, password })).body.access_token;
      const [{ jwt: ziik }] = (await post(`${server.url}/api/authenticate`, { username: email, password })).body;
      assert.equal(await resetMailsFor(username, email), 2);
      // Both are sent in the background, in either order.
      const mails = [(await mailbox.next(email)).text ?? '', (await mailbox.next(email)).text ?? ''].join('\n');
      const code = /Confirmation code: (\d{6})/.exec(mails)![1];
      const link = decodeURIComponent(/reset-password\?token=([\w%-]+)/.exec(mails)![1]);

      const disabled = await post(`${server.url}/admin/users/${username}/disable`, {}, admin);
      assert.equal(disabled.body.status, 'disabled');

      // Login on the three APIs, with the right password.
      assert.deepEqual((await post(`${server.url}/v1/login`, { username, password })).body, { status: 401, message: 'User is disabled.' });
      const roypiLogin = await post(`${server.url}/auth/access_token/`, { username, password });
      assert.deepEqual([roypiLogin.status, roypiLogin.body], [400, { non_field_errors: ['User account is disabled.'] }]);
      const ziikLogin = await post(`${server.url}/api/authenticate`, { username: email, password });
      assert.deepEqual([ziikLogin.status, ziikLogin.body], [401, { message: 'Invalid credentials.' }]);

      // Refresh and renew.
      const refreshed = await post(`${server.url}/v1/token-refresh`, { username, refresh_token: v1.refresh_token });
      assert.deepEqual([refreshed.status, refreshed.body], [401, { status: 401, message: 'Unauthorized.' }]);
      const roypiRefresh = await post(`${server.url}/auth/refresh_token/`, { token: roypi });
      assert.deepEqual([roypiRefresh.status, roypiRefresh.body], [400, { non_field_errors: ['User account is disabled.'] }]);
      const renewed = await call(`${server.url}/api/renew`, bearer(ziik));
      assert.deepEqual([renewed.status, renewed.body], [401, { message: 'Invalid credentials.' }]);

      // Verification, with each API's token.
      for (const token of [v1.access_token, roypi, ziik]) {
        const verified = await post(`${server.url}/auth/verify_token/`, { token });
        assert.deepEqual([verified.status, verified.body], [400, { non_field_errors: ['User account is disabled.'] }]);
        const user = await call(`${server.url}/auth/user/`, bearer(token, 'Token'));
        assert.deepEqual([user.status, user.body], [401, { detail: 'User account is disabled.' }]);
        const info = await call(`${server.url}/userinfo`, bearer(token));
        assert.deepEqual([info.status, info.body], [401, { error: 'invalid_token', error_description: 'The user is disabled.' }]);
        const forward = await call(`${server.url}/forward-auth`, bearer(token));
        assert.deepEqual([forward.status, forward.body], [401, { error: 'invalid_token', error_description: 'The user is disabled.' }]);
        assert.equal(forward.headers.get('x-auth-username'), null);
        const introspected = await post(`${server.url}/introspect`, { token }, { authorization: `Bearer ${INTROSPECTION}` });
        assert.deepEqual(introspected.body, { active: false });
      }

      // Change-password with a token from before.
      const changed = await post(`${server.url}/v1/change-password`, {
        access_token: v1.access_token,
        previous_password: password,
        proposed_password: 'dora-changed-password',
      });
      assert.deepEqual([changed.status, changed.body], [401, { status: 401, message: 'User is disabled.' }]);

      // Reset: no new mail, and the code and link sent before the account was disabled are dead.
      assert.equal(await resetMailsFor(username, email), 0);
      const confirmed = await post(`${server.url}/v1/forgot-password-confirm`, { username, password: 'dora-reset-password', confirmation_code: code });
      assert.deepEqual([confirmed.status, confirmed.body], [401, { status: 401, message: 'Invalid verification code provided, please try again.' }]);
      const reset = await post(`${server.url}/api/password/reset`, { token: link, email, password: 'dora-reset-password', password_confirm: 'dora-reset-password' });
      // Disabling retired the link, as a password change does.
      assert.deepEqual([reset.status, reset.body], [400, { message: 'This link has already been used.' }]);
      const page = await call(`${server.url}/reset-password?token=${encodeURIComponent(link)}`);
      assert.equal(page.status, 400);
      assert.match(page.text, /role="alert">This link has already been used\.</);
      const pagePost = await call(`${server.url}/reset-password`, {
        body: new URLSearchParams({ token: link, password: 'dora-reset-password', password_confirm: 'dora-reset-password' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(pagePost.status, 400);
      assert.match(pagePost.text, /role="alert">This link has already been used\.</);

      // Enabled again, the password is the one it had: nothing above changed it.
      assert.equal((await post(`${server.url}/admin/users/${username}/enable`, {}, admin)).body.status, 'active');
      assert.equal((await post(`${server.url}/v1/login`, { username, password: 'dora-reset-password' })).status, 401);
      assert.equal((await post(`${server.url}/v1/login`, { username, password })).status, 200);
      // And the code and link stay dead: disabling retired them.
      const late = await post(`${server.url}/v1/forgot-password-confirm`, { username, password: 'dora-reset-password', confirmation_code: code });
      assert.equal(late.status, 401);
      assert.equal((await post(`${server.url}/api/password/reset`, { token: link, email, password: 'dora-reset-password', password_confirm: 'dora-reset-password' })).status, 400);
    });

    it('an externally managed user has no password to sign in, reset or change with', async () => {
      const username = 'exter';
      const email = 'exter@example.com';
      await createUser(server, { username, email, external: true });

      for (const password of ['', 'any-password-at-all']) {
        const v1 = await post(`${server.url}/v1/login`, { username, password });
        const roypi = await post(`${server.url}/auth/access_token/`, { username, password });
        const ziik = await post(`${server.url}/api/authenticate`, { username: email, password });
        if (password === '') {
          // A blank password is a malformed request before it is a wrong one.
          assert.deepEqual([v1.status, roypi.status, ziik.status], [422, 400, 422]);
          assert.deepEqual(roypi.body, { password: ['This field may not be blank.'] });
          continue;
        }
        assert.deepEqual([v1.status, v1.body], [401, { status: 401, message: 'Incorrect username or password.' }]);
        assert.deepEqual([roypi.status, roypi.body], [400, { non_field_errors: ['Unable to log in with provided credentials.'] }]);
        assert.deepEqual([ziik.status, ziik.body], [401, { message: 'Invalid credentials.' }]);
      }

      assert.equal(await resetMailsFor(username, email), 0);
      const confirmed = await post(`${server.url}/v1/forgot-password-confirm`, { username, password: 'exter-new-password', confirmation_code: '123456' });
      assert.deepEqual([confirmed.status, confirmed.body], [401, { status: 401, message: 'Invalid verification code provided, please try again.' }]);
      const set = await post(`${server.url}/admin/users/${username}/password`, { password: 'exter-new-password' }, admin);
      assert.deepEqual([set.status, set.body], [409, { error: 'externally_managed', message: 'this user signs in through an external identity provider and has no password here' }]);
      assert.equal((await post(`${server.url}/v1/login`, { username, password: 'exter-new-password' })).status, 401);
    });
  });
}
