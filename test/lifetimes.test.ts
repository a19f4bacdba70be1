// Every lifetime from both sides, on the test clock: still works a second before it ends,
// dead a second after. Access tokens per API, the /v1 refresh token, Roypi's refresh window,
// Ziik's renew window, reset codes and links, and the NEW_PASSWORD_REQUIRED challenge.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, startMailbox, post, call, createUser, type TestServer, type Mailbox } from './helpers.ts';

const DAY = 86400;
const HOUR = 3600;

for (const engine of ENGINES) {
  describe(`lifetimes on ${engine.name}`, () => {
    let server: TestServer;
    let mailbox: Mailbox;

    before(async () => {
      mailbox = await startMailbox();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });
    // Each test starts at the real time, whatever the one before it did to the clock.
    afterEach(() => server.clock.reset());

    let users = 0;
    /** A user of the test's own, so no test leans on another's logins, codes or lockouts. */
    async function freshUser(extra: Record<string, unknown> = {}) {
      const username = `life${++users}`;
      const email = `${username}@example.com`;
      await createUser(server, { username, email, password: `${username}-password`, ...extra });
      return { username, email, password: `${username}-password` };
    }

    // Time stands still from begin(), and at() moves it to an exact second after, so a lifetime's
    // last second is its last second however long the requests in between take.
    let start = 0;
    const begin = () => {
      server.clock.freeze();
      start = server.clock.offsetMs;
    };
    /** Moves the clock to `seconds` after begin() (not after the last move). */
    const at = (seconds: number) => {
      server.clock.offsetMs = start + seconds * 1000;
    };

    const userinfo = (token: string) => call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
    const expired = { error: 'invalid_token', error_description: 'The token has expired.' };

    it('a /v1 access token lives 1 day', async () => {
      const { username, password } = await freshUser();
      begin();
      const { access_token } = (await post(`${server.url}/v1/login`, { username, password })).body;
      at(DAY - 1);
      assert.equal((await userinfo(access_token)).status, 200);
      at(DAY + 1);
      const dead = await userinfo(access_token);
      assert.equal(dead.status, 401);
      assert.deepEqual(dead.body, expired);
    });

    it('a /v1 refresh token lives 90 days', async () => {
      const { username, password } = await freshUser();
      begin();
      const { refresh_token } = (await post(`${server.url}/v1/login`, { username, password })).body;
      const refresh = () => post(`${server.url}/v1/token-refresh`, { username, refresh_token });
      at(90 * DAY - 1);
      const alive = await refresh();
      assert.equal(alive.status, 200, alive.text);
      assert.equal((await userinfo(alive.body.access_token)).status, 200);
      at(90 * DAY + 1);
      const dead = await refresh();
      assert.equal(dead.status, 401);
      assert.deepEqual(dead.body, { status: 401, message: 'Unauthorized.' });
    });

    it('a Roypi token lives 5 days', async () => {
      const { username, password } = await freshUser();
      begin();
      const token = (await post(`${server.url}/auth/access_token/`, { username, password })).body.access_token;
      at(5 * DAY - 1);
      assert.equal((await post(`${server.url}/auth/verify_token/`, { token })).status, 200);
      at(5 * DAY + 1);
      const dead = await post(`${server.url}/auth/verify_token/`, { token });
      assert.equal(dead.status, 400);
      assert.deepEqual(dead.body, { non_field_errors: ['Signature has expired.'] });
    });

    it('Roypi tokens refresh until 10 days after the original login', async () => {
      const { username, password } = await freshUser();
      begin();
      let token = (await post(`${server.url}/auth/access_token/`, { username, password })).body.access_token;
      const refresh = (t: string) => post(`${server.url}/auth/refresh_token/`, { token: t });
      for (const day of [4, 8]) {
        at(day * DAY);
        token = (await refresh(token)).body.token;
        assert.ok(typeof token === 'string', `refreshed on day ${day}`);
      }
      at(10 * DAY - 1);
      const last = await refresh(token);
      assert.equal(last.status, 200, last.text);
      at(10 * DAY + 1);
      const dead = await refresh(last.body.token);
      assert.equal(dead.status, 400);
      assert.deepEqual(dead.body, { non_field_errors: ['Refresh has expired.'] });
    });

    it('a Ziik token lives 1 day', async () => {
      const { email, password } = await freshUser();
      begin();
      const [{ jwt }] = (await post(`${server.url}/api/authenticate`, { username: email, password })).body;
      const renew = () => call(`${server.url}/api/renew`, { headers: { authorization: `Bearer ${jwt}` } });
      at(DAY - 1);
      assert.equal((await userinfo(jwt)).status, 200);
      assert.equal((await renew()).status, 200);
      at(DAY + 1);
      assert.deepEqual((await userinfo(jwt)).body, expired);
      const dead = await renew();
      assert.equal(dead.status, 401);
      assert.deepEqual(dead.body, { message: 'Unauthenticated.' });
    });

    it('Ziik tokens renew until 30 days after the login, and not after', async () => {
      const { email, password } = await freshUser();
      begin();
      let [{ jwt }] = (await post(`${server.url}/api/authenticate`, { username: email, password })).body;
      const renew = (token: string) => call(`${server.url}/api/renew`, { headers: { authorization: `Bearer ${token}` } });
      // Renewed every 20 hours, each token before the last one (a day's) has run out.
      let hours = 0;
      while (hours + 20 < 30 * 24) {
        hours += 20;
        at(hours * HOUR);
        const renewed = await renew(jwt);
        assert.equal(renewed.status, 200, `hour ${hours}: ${renewed.text}`);
        jwt = renewed.body[0].jwt;
      }
      assert.equal(hours, 700);
      at(30 * DAY - 1);
      const last = await renew(jwt);
      assert.equal(last.status, 200, last.text);
      // The last token still lives its day, but renews no more.
      at(30 * DAY + 1);
      assert.equal((await userinfo(last.body[0].jwt)).status, 200);
      const dead = await renew(last.body[0].jwt);
      assert.equal(dead.status, 401);
      assert.deepEqual(dead.body, { message: 'Unauthenticated.' });
    });

    it('a reset code lives 1 hour', async () => {
      const { username, email } = await freshUser();
      const codeFor = async () => {
        assert.equal((await post(`${server.url}/v1/forgot-password`, { username })).status, 204);
        return /Confirmation code: (\d{6})/.exec((await mailbox.next(email)).text ?? '')![1];
      };
      const confirm = (confirmation_code: string, password: string) =>
        post(`${server.url}/v1/forgot-password-confirm`, { username, password, confirmation_code });

      begin();
      const first = await codeFor();
      at(HOUR - 1);
      assert.equal((await confirm(first, 'reset-just-in-time')).status, 204);

      begin();
      const second = await codeFor();
      at(HOUR + 1);
      const dead = await confirm(second, 'reset-too-late');
      // Every failed confirm answers alike (main's choice: no telling expired from wrong); the code was right an hour earlier.
      assert.deepEqual([dead.status, dead.body], [401, { status: 401, message: 'Invalid verification code provided, please try again.' }]);
    });

    it('a reset link lives 1 hour, through the API and on the hosted page', async () => {
      const { email } = await freshUser();
      const linkToken = async () => {
        assert.equal((await post(`${server.url}/api/password/request`, { email })).status, 204);
        return decodeURIComponent(/reset-password\?token=([\w%-]+)/.exec((await mailbox.next(email)).text ?? '')![1]);
      };
      const reset = (token: string, password: string) =>
        post(`${server.url}/api/password/reset`, { token, email, password, password_confirm: password });
      const page = (token: string) => call(`${server.url}/reset-password?token=${encodeURIComponent(token)}`);

      begin();
      const first = await linkToken();
      at(HOUR - 1);
      assert.equal((await page(first)).status, 200);
      assert.equal((await reset(first, 'reset-just-in-time')).status, 204);

      begin();
      const second = await linkToken();
      at(HOUR + 1);
      const shown = await page(second);
      assert.equal(shown.status, 400);
      assert.match(shown.text, /role="alert">This link has expired\.</);
      const dead = await reset(second, 'reset-too-late');
      assert.deepEqual([dead.status, dead.body], [400, { message: 'This link has expired.' }]);
    });

    it('a NEW_PASSWORD_REQUIRED challenge lives 3 minutes', async () => {
      const answer = async (after: number) => {
        const { username } = await freshUser({ password: undefined, temporary_password: 'temporary-password' });
        begin();
        const { session } = (await post(`${server.url}/v1/login`, { username, password: 'temporary-password' })).body;
        at(after);
        return post(`${server.url}/v1/new-password-required`, { session, username, new_password: 'a-new-password' });
      };
      const alive = await answer(3 * 60 - 1);
      assert.equal(alive.status, 200, alive.text);
      assert.ok(alive.body.access_token);
      const dead = await answer(3 * 60 + 1);
      assert.equal(dead.status, 401);
      assert.deepEqual(dead.body, { status: 401, message: 'Unauthorized.' });
    });
  });
}
