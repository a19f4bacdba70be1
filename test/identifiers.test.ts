// Identifiers are unambiguous and safe in every encoding: a digit-only username is a username,
// never an id; names outside Latin-1 survive /forward-auth; control characters in any field of
// any route are a 4xx in the dialect's shape, on both stores, and never reach the store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { ENGINES, startServer, freshStore, call, post, createUser, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';

const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Sends raw bytes as a body, for what fetch cannot send (invalid UTF-8). */
function rawPost(url: string, body: Buffer, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', headers: { 'content-type': contentType, 'content-length': body.length } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (d) => (text += d));
      response.on('end', () => resolve({ status: response.statusCode!, text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

for (const engine of ENGINES) {
  describe(`identifiers and encodings on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;
    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, {}, store);
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    function cli(args: string[]) {
      return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...store.env, LOG_LEVEL: 'silent' } }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    }

    it('a digit-only username is a username in the admin API; ids are addressed apart', async () => {
      const first = await createUser(server, { username: 'first', email: 'first@example.com', password: 'first-password' });
      const three = await createUser(server, { username: String(first.id), email: 'digits@example.com', password: 'digits-password' });
      assert.notEqual(three.id, first.id);
      // /admin/users/<name> is always the name: this disables the user called "1", not user id 1.
      const disabled = await post(`${server.url}/admin/users/${first.id}/disable`, {}, admin);
      assert.equal(disabled.status, 200, disabled.text);
      assert.equal(disabled.body.id, three.id);
      assert.equal((await call(`${server.url}/admin/users/first`, { headers: admin })).body.status, 'active');
      // Ids have their own route.
      const byId = await call(`${server.url}/admin/user-ids/${first.id}`, { headers: admin });
      assert.equal(byId.status, 200);
      assert.equal(byId.body.username, 'first');
      assert.equal((await post(`${server.url}/admin/user-ids/${first.id}/disable`, {}, admin)).body.username, 'first');
      assert.equal((await post(`${server.url}/admin/user-ids/${first.id}/enable`, {}, admin)).body.status, 'active');
      assert.equal((await call(`${server.url}/admin/user-ids/999999`, { headers: admin })).status, 404);
      assert.equal((await call(`${server.url}/admin/user-ids/first`, { headers: admin })).status, 400);
      // A name nobody has is not found, even when it is some user's id.
      assert.equal((await call(`${server.url}/admin/users/${three.id + 1000}`, { headers: admin })).status, 404);
    });

    it('a digit-only username is a username in the CLI; --id addresses by id', async () => {
      // Its own pair: a user, and another named by that user's id.
      const first = await createUser(server, { username: 'cli-first', email: 'cli-first@example.com', password: 'first-password' });
      await createUser(server, { username: String(first.id), email: 'cli-digits@example.com', password: 'digits-password' });
      const got = await cli(['users', 'get', String(first.id)]);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(JSON.parse(got.stdout).username, String(first.id));
      const byId = await cli(['users', 'get', '--id', String(first.id)]);
      assert.equal(byId.code, 0, byId.stderr);
      assert.equal(JSON.parse(byId.stdout).username, 'cli-first');
      const both = await cli(['users', 'get', 'cli-first', '--id', String(first.id)]);
      assert.equal(both.code, 2);
      const badId = await cli(['users', 'get', '--id', 'cli-first']);
      assert.equal(badId.code, 2);
    });

    it('forward-auth sends names and emails outside Latin-1 percent-encoded (RFC 3986), and ASCII ones as they are', async () => {
      const names = [
        ['иван', 'иван@пример.рф'],
        ['山田太郎', 'yamada@例え.jp'],
        ['🦊fox', 'fox🦊@example.com'],
        ['zoë', 'zoë@example.com'],
        ['plain.name', 'plain@example.com'],
      ];
      for (const [username, email] of names) {
        const user = await createUser(server, { username, email, password: `${username}-password-long` });
        const login = await post(`${server.url}/v1/login`, { username, password: `${username}-password-long` });
        assert.equal(login.status, 200, login.text);
        const reply = await call(`${server.url}/forward-auth`, { headers: { authorization: `Bearer ${login.body.access_token}` } });
        assert.equal(reply.status, 200, `${username}: ${reply.text}`);
        const sentName = reply.headers.get('x-auth-username')!;
        const sentEmail = reply.headers.get('x-auth-email')!;
        assert.match(sentName, /^[A-Za-z0-9\-._~%]+$/, 'only unreserved characters and escapes');
        assert.equal(decodeURIComponent(sentName), username.normalize('NFKC').toLowerCase());
        assert.equal(decodeURIComponent(sentEmail), email.normalize('NFKC').toLowerCase());
        assert.equal(reply.headers.get('x-auth-user-id'), String(user.id));
      }
      const plain = await post(`${server.url}/v1/login`, { username: 'plain.name', password: 'plain.name-password-long' });
      const reply = await call(`${server.url}/forward-auth`, { headers: { authorization: `Bearer ${plain.body.access_token}` } });
      assert.equal(reply.headers.get('x-auth-username'), 'plain.name');
      assert.equal(reply.headers.get('x-auth-email'), 'plain%40example.com');
    });

    const NASTY = ['a\u0000b', 'a\u0001b', 'a\u001fb', 'a\u007fb', 'a\u0085b', 'a\u009fb', 'a\ud800b', 'a\udfffb', 'a\nb'];

    it('control characters and lone surrogates in any JSON field are a 4xx in each dialect shape', async () => {
      for (const bad of NASTY) {
        const v1 = await post(`${server.url}/v1/login`, { username: bad, password: 'whatever-password' });
        assert.equal(v1.status, 422, `${JSON.stringify(bad)}: ${v1.text}`);
        assert.equal(v1.body.status, 422);
        assert.equal(typeof v1.body.message, 'string');

        const forgot = await post(`${server.url}/v1/forgot-password`, { username: bad });
        assert.equal(forgot.status, 422, forgot.text);
        const confirm = await post(`${server.url}/v1/forgot-password-confirm`, { username: 'first', password: 'new-password-1', confirmation_code: bad });
        assert.equal(confirm.status, 422, confirm.text);

        const roypi = await post(`${server.url}/auth/access_token/`, { username: 'first', password: bad });
        assert.equal(roypi.status, 400, roypi.text);
        assert.deepEqual(Object.keys(roypi.body), ['password']);

        const ziik = await post(`${server.url}/api/password/request`, { email: `x${bad}@example.com` });
        assert.equal(ziik.status, 422, ziik.text);
        assert.deepEqual(Object.keys(ziik.body.errors), ['email']);
        const auth = await post(`${server.url}/api/authenticate`, { username: bad, password: 'whatever-password' });
        assert.equal(auth.status, 422, auth.text);

        const made = await post(`${server.url}/admin/users`, { username: 'ctl', email: `ctl${bad}@example.com`, password: 'ctl-password' }, admin);
        assert.equal(made.status, 400, made.text);
        assert.deepEqual(Object.keys(made.body.fields), ['email']);

        const page = await call(`${server.url}/reset-password`, { body: JSON.stringify({ token: bad, password: 'x-password-1', password_confirm: 'x-password-1' }), headers: { 'content-type': 'application/json' } });
        assert.ok(page.status >= 400 && page.status < 500, page.text);
        assert.match(page.headers.get('content-type') ?? '', /text\/html/);

        const introspect = await post(`${server.url}/introspect`, { token: bad }, admin);
        assert.ok(introspect.status < 500, introspect.text);
      }
    });

    it('control characters in form bodies, paths and query strings are a 4xx too', async () => {
      const form = await call(`${server.url}/v1/login`, {
        body: 'username=a%00b&password=whatever-password',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(form.status, 422, form.text);
      const path = await call(`${server.url}/admin/users/a%00b`, { headers: admin });
      assert.equal(path.status, 400, path.text);
      assert.equal(path.body.error, 'validation');
      const pathC1 = await call(`${server.url}/admin/users/a%C2%85b/disable`, { method: 'POST', headers: admin });
      assert.equal(pathC1.status, 400, pathC1.text);
      const query = await call(`${server.url}/reset-password?token=a%00b`);
      assert.equal(query.status, 400);
      assert.match(query.headers.get('content-type') ?? '', /text\/html/);
    });

    it('invalid UTF-8 in a body is a 4xx, never silently replaced', async () => {
      // "fïrst" in Latin-1, not UTF-8: 0xEF 0x72 is no UTF-8 sequence.
      const latin1 = Buffer.concat([Buffer.from('{"username":"f'), Buffer.from([0xef, 0x72]), Buffer.from('st","password":"first-password"}')]);
      const cases: [string, string, number][] = [
        ['/v1/login', 'application/json', 422],
        ['/auth/access_token/', 'text/plain', 400],
        ['/api/authenticate', 'application/x-www-form-urlencoded', 422],
      ];
      for (const [path, type, status] of cases) {
        const reply = await rawPost(`${server.url}${path}`, latin1, type);
        assert.equal(reply.status, status, `${path}: ${reply.text}`);
        assert.match(reply.text, /UTF-8/);
      }
      const form = await call(`${server.url}/v1/login`, { body: 'username=f%EFrst&password=first-password', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(form.status, 422, form.text);
      // A stray percent sign that starts no escape is still just a percent sign.
      await createUser(server, { username: 'percent', email: 'percent@example.com', password: '50%off-password' });
      const percent = await call(`${server.url}/v1/login`, { body: 'username=percent&password=50%off-password', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(percent.status, 200, percent.text);
    });

    it('the CLI refuses control characters in usernames and emails', async () => {
      for (const [username, email] of [['ok-name', 'bad\u0001@example.com'], ['bad\u0001name', 'ok@example.com'], ['ok-name2', 'bad\u0085@example.com']]) {
        const made = await cli(['users', 'create', username, '--email', email, '--password', 'cli-password-1']);
        // Refused either as a bad flag value (exit 2) or by the core's validation (exit 1).
        assert.ok(made.code === 1 || made.code === 2, `${JSON.stringify([username, email])}: ${made.stdout}`);
        assert.match(made.stderr, /validation|email address/);
        assert.equal(made.stdout, '');
      }
    });
  });
}
