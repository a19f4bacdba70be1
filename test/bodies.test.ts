// Bodies and credentials as the README says: loose content types read as JSON, empty admin
// bodies, Ziik 422s that name their field, and the Roypi scheme answered in Roypi's shape.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, call, post, createUser, ADMIN_TOKEN, type TestServer } from './helpers.ts';

for (const engine of ENGINES) {
  describe(`request bodies and schemes on ${engine.name}`, () => {
    let server: TestServer;
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    before(async () => {
      server = await startServer(engine);
      await createUser(server, { username: 'body', email: 'body@example.com', password: 'body-password' });
    });
    after(() => server.close());

    it('reads JSON sent as text/plain (or with no content type) as JSON, like a form body', async () => {
      const json = JSON.stringify({ username: 'body', password: 'body-password' });
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'application/octet-stream']) {
        const reply = await call(`${server.url}/v1/login`, { body: json, headers: { 'content-type': type } });
        assert.equal(reply.status, 200, `${type}: ${reply.text}`);
        assert.equal(typeof reply.body.access_token, 'string');
      }
      const form = await call(`${server.url}/v1/login`, { body: 'username=body&password=body-password', headers: { 'content-type': 'text/plain' } });
      assert.equal(form.status, 200, form.text);
    });

    it('takes admin calls with content-type application/json and no body', async () => {
      await createUser(server, { username: 'empty-body', email: 'empty-body@example.com', password: 'empty-body-password' });
      for (const action of ['disable', 'enable', 'sign-out']) {
        const reply = await call(`${server.url}/admin/users/empty-body/${action}`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' } });
        assert.equal(reply.status, 200, `${action}: ${reply.text}`);
      }
      const deleted = await call(`${server.url}/admin/users/empty-body`, { method: 'DELETE', headers: { ...admin, 'content-type': 'application/json' } });
      assert.equal(deleted.status, 204, deleted.text);
      // A route that needs a body still says which field is missing.
      const noPassword = await call(`${server.url}/admin/users/body/password`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' } });
      assert.equal(noPassword.status, 400);
      assert.deepEqual(Object.keys(noPassword.body.fields), ['password']);
    });

    it('Ziik 422s always name the field that failed', async () => {
      const badEmail = await post(`${server.url}/api/password/request`, { email: 'not-an-email' });
      assert.equal(badEmail.status, 422);
      assert.deepEqual(Object.keys(badEmail.body.errors), ['email']);
      assert.equal(badEmail.body.errors.email.length, 1);

      const mismatch = await post(`${server.url}/api/password/reset`, {
        token: 'any-token', email: 'body@example.com', password: 'brand-new-pass', password_confirm: 'something-else',
      });
      assert.equal(mismatch.status, 422);
      assert.deepEqual(Object.keys(mismatch.body.errors), ['password']);
      assert.equal(typeof mismatch.body.errors.password[0], 'string');
    });

    it('core validation errors name their field on the admin API too', async () => {
      const reply = await post(`${server.url}/admin/users`, { username: 'has space', email: 'x@example.com', password: 'password-1234' }, admin);
      assert.equal(reply.status, 400);
      assert.deepEqual(Object.keys(reply.body.fields), ['username']);
      const email = await post(`${server.url}/admin/users`, { username: 'nospace', email: 'not-an-email', password: 'password-1234' }, admin);
      assert.deepEqual(Object.keys(email.body.fields), ['email']);
    });

    for (const path of ['/userinfo', '/forward-auth', '/auth/user/']) {
      it(`${path}: the Roypi scheme gets Roypi's 401, Bearer keeps RFC 6750's`, async () => {
        for (const authorization of ['Token not-a-jwt', 'token not-a-jwt', 'Token a.b.c']) {
          const reply = await call(`${server.url}${path}`, { headers: { authorization } });
          assert.equal(reply.status, 401, reply.text);
          assert.deepEqual(Object.keys(reply.body), ['detail'], reply.text);
          assert.equal(reply.headers.get('www-authenticate'), 'Token realm="api"');
        }
        if (path === '/auth/user/') return;
        const bearer = await call(`${server.url}${path}`, { headers: { authorization: 'Bearer not-a-jwt' } });
        assert.equal(bearer.status, 401);
        assert.equal(bearer.body.error, 'invalid_token');
        assert.match(bearer.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
        // A good Token still works.
        const token = (await post(`${server.url}/auth/access_token/`, { username: 'body', password: 'body-password' })).body.access_token;
        assert.equal((await call(`${server.url}${path}`, { headers: { authorization: `Token ${token}` } })).status, 200);
        await post(`${server.url}/admin/users/body/sign-out`, {}, admin);
        const revoked = await call(`${server.url}${path}`, { headers: { authorization: `Token ${token}` } });
        assert.equal(revoked.status, 401);
        assert.deepEqual(revoked.body, { detail: 'Token has been revoked.' });
        assert.equal(revoked.headers.get('www-authenticate'), 'Token realm="api"');
      });
    }
  });
}
