// Every outstanding secret (reset codes, reset links, NEW_PASSWORD_REQUIRED challenge sessions)
// dies on any password change, on disable and on delete, whatever the path (the admin import
// included), and a change of email ends what was mailed to the old address: none of them may undo
// what came after.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, startMailbox, post, call, createUser, ADMIN_TOKEN, type TestServer, type Mailbox } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

for (const engine of ENGINES) {
  describe(`outstanding secrets end with the password on ${engine.name}`, () => {
    let server: TestServer;
    let mailbox: Mailbox;
    let n = 0;

    before(async () => {
      mailbox = await startMailbox();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, LATCHKEY_RESET_REQUESTS_PER_IP: '1000' });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });

    const adminPost = (path: string, body: unknown = {}) => post(`${server.url}/admin${path}`, body, admin);
    /** `POST /admin/users/import?update=true` with these rows; every row must be counted as updated. */
    async function importUpdate(...rows: Record<string, unknown>[]) {
      const reply = await call(`${server.url}/admin/users/import?update=true`, {
        body: rows.map((row) => JSON.stringify(row)).join('\n'),
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual([reply.body.updated, reply.body.rejected], [rows.length, 0], reply.text);
    }

    /** A fresh user with a temporary password and an outstanding challenge session. */
    async function withChallenge() {
      const username = `temp-${++n}`;
      await createUser(server, { username, email: `${username}@example.com`, temporary_password: 'temporary-1' });
      const login = await post(`${server.url}/v1/login`, { username, password: 'temporary-1' });
      assert.equal(login.body.challenge_name, 'NEW_PASSWORD_REQUIRED');
      const answer = () => post(`${server.url}/v1/new-password-required`, { session: login.body.session, username, new_password: 'chosen-password-1' });
      return { username, answer };
    }

    /** A fresh user with an outstanding reset code (/v1) and reset link (/api). */
    async function withResetSecrets() {
      const username = `reset-${++n}`;
      const email = `${username}@example.com`;
      await createUser(server, { username, email, password: 'first-password-1' });
      assert.equal((await post(`${server.url}/v1/forgot-password`, { username })).status, 204);
      const code = /Confirmation code: (\d{6})/.exec((await mailbox.next(email)).text ?? '')![1];
      assert.equal((await post(`${server.url}/api/password/request`, { email })).status, 204);
      const token = decodeURIComponent(/token=([\w%-]+)/.exec((await mailbox.next(email)).text ?? '')![1]);
      return {
        username,
        useCode: () => post(`${server.url}/v1/forgot-password-confirm`, { username, password: 'by-code-password', confirmation_code: code }),
        useLink: () => post(`${server.url}/api/password/reset`, { token, email, password: 'by-link-password', password_confirm: 'by-link-password' }),
      };
    }

    it('a challenge session still answers when nothing happened to the user', async () => {
      const { answer } = await withChallenge();
      assert.equal((await answer()).status, 200);
    });

    it('an admin setting a new temporary password ends the outstanding challenge session', async () => {
      const { username, answer } = await withChallenge();
      assert.equal((await adminPost(`/users/${username}/password`, { password: 'temporary-2', temporary: true })).status, 200);
      const reply = await answer();
      assert.deepEqual([reply.status, reply.body.status], [401, 401]);
      // The new temporary password gets a challenge of its own, which works.
      const login = await post(`${server.url}/v1/login`, { username, password: 'temporary-2' });
      const fresh = await post(`${server.url}/v1/new-password-required`, { session: login.body.session, username, new_password: 'chosen-password-2' });
      assert.equal(fresh.status, 200);
    });

    it('an admin setting a permanent password ends the outstanding challenge session', async () => {
      const { username, answer } = await withChallenge();
      assert.equal((await adminPost(`/users/${username}/password`, { password: 'permanent-1' })).status, 200);
      assert.equal((await answer()).status, 401);
    });

    it('disabling (and enabling again) ends the outstanding challenge session', async () => {
      const { username, answer } = await withChallenge();
      assert.equal((await adminPost(`/users/${username}/disable`)).status, 200);
      assert.equal((await adminPost(`/users/${username}/enable`)).status, 200);
      assert.equal((await answer()).status, 401);
    });

    it('reset code and link both still work when nothing happened to the user', async () => {
      const first = await withResetSecrets();
      assert.equal((await first.useCode()).status, 204);
      const second = await withResetSecrets();
      assert.equal((await second.useLink()).status, 204);
    });

    it('disabling (and enabling again) ends the outstanding reset code and link', async () => {
      const { username, useCode, useLink } = await withResetSecrets();
      assert.equal((await adminPost(`/users/${username}/disable`)).status, 200);
      assert.equal((await adminPost(`/users/${username}/enable`)).status, 200);
      assert.equal((await useCode()).status, 401);
      assert.equal((await useLink()).status, 400);
      assert.equal((await post(`${server.url}/v1/login`, { username, password: 'first-password-1' })).status, 200, 'the password is unchanged');
    });

    for (const how of ['change-password', 'admin set-password', 'the other reset secret'] as const) {
      it(`${how} ends the outstanding reset code and link`, async () => {
        const { username, useCode, useLink } = await withResetSecrets();
        if (how === 'change-password') {
          const login = await post(`${server.url}/v1/login`, { username, password: 'first-password-1' });
          const reply = await post(`${server.url}/v1/change-password`, {
            access_token: login.body.access_token,
            previous_password: 'first-password-1',
            proposed_password: 'changed-password-1',
          });
          assert.equal(reply.status, 204);
        } else if (how === 'admin set-password') {
          assert.equal((await adminPost(`/users/${username}/password`, { password: 'admin-password-1' })).status, 200);
        } else {
          assert.equal((await useCode()).status, 204);
        }
        if (how !== 'the other reset secret') assert.equal((await useCode()).status, 401);
        assert.equal((await useLink()).status, 400);
      });
    }

    it('an import that changes the password ends the outstanding challenge session', async () => {
      const { username, answer } = await withChallenge();
      await importUpdate({ username, password: 'imported-password-1' });
      const reply = await answer();
      assert.equal(reply.status, 401, `a challenge opened before the import still answered: ${reply.text}`);
      assert.equal((await post(`${server.url}/v1/login`, { username, password: 'imported-password-1' })).status, 200);
    });

    for (const how of ['a new password', 'a new password hash', 'disabled'] as const) {
      it(`an import that sets ${how} ends the outstanding reset code and link`, async () => {
        const { username, useCode, useLink } = await withResetSecrets();
        if (how === 'a new password') await importUpdate({ username, password: 'imported-password-2' });
        else if (how === 'a new password hash') {
          const argon = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZkVfSvlZpMBY8jhyU6IDsMSU1oCvnHR5vbtB+IyuWk4';
          await importUpdate({ username, password_hash: argon });
        } else await importUpdate({ username, status: 'disabled' });
        assert.equal((await useCode()).status, 401);
        assert.equal((await useLink()).status, 400);
      });
    }

    it('an import that changes the email ends the codes and links mailed to the old address', async () => {
      const { username, useCode, useLink } = await withResetSecrets();
      await importUpdate({ username, email: `moved-${username}@example.com` });
      assert.equal((await useLink()).status, 400, 'a link mailed to the old address still reset the password');
      assert.equal((await useCode()).status, 401, 'a code mailed to the old address still reset the password');
      assert.equal((await post(`${server.url}/v1/login`, { username, password: 'first-password-1' })).status, 200, 'the password is unchanged');
    });

    it('an import that changes the password ends every session', async () => {
      const username = `sessions-${++n}`;
      await createUser(server, { username, email: `${username}@example.com`, password: 'first-password-1' });
      const login = await post(`${server.url}/v1/login`, { username, password: 'first-password-1' });
      await importUpdate({ username, password: 'imported-password-3' });
      assert.equal((await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${login.body.access_token}` } })).status, 401);
      const refreshed = await post(`${server.url}/v1/token-refresh`, { username, refresh_token: login.body.refresh_token });
      assert.equal(refreshed.status, 401);
    });

    it('deleting a user ends their secrets, even for a new account of the same name', async () => {
      const reset = await withResetSecrets();
      const challenge = await withChallenge();
      for (const username of [reset.username, challenge.username]) {
        assert.equal((await call(`${server.url}/admin/users/${username}`, { method: 'DELETE', headers: admin })).status, 204);
        await createUser(server, { username, email: `${username}@example.com`, temporary_password: 'temporary-1' });
      }
      assert.equal((await reset.useCode()).status, 401);
      assert.equal((await reset.useLink()).status, 400);
      assert.equal((await challenge.answer()).status, 401);
    });
  });
}
