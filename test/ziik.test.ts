// The Ziik API (/api) as its docs describe it, over real HTTP, on each store. Every curl
// line in docs/api/ziik.md is run by curl itself, as written but for the host and secrets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ENGINES, startServer, startMailbox, call, post, createUser, decodeJwt, type TestServer, type Mailbox } from './helpers.ts';

const run = promisify(execFile);

/** The curl commands of the doc, each joined into one line (its continuation lines end with a backslash). */
export function documentedCurlLines(markdown: string): string[] {
  const commands: string[] = [];
  for (const block of markdown.matchAll(/```bash\n([\s\S]*?)```/g)) {
    let current: string[] | undefined;
    for (const line of block[1].split('\n').map((l) => l.replace(/\s*\\$/, ''))) {
      if (line.startsWith('curl ')) {
        current = [line.trim()];
        commands.push('');
      } else if (current && /^\s+-/.test(line)) {
        current.push(line.trim());
      } else continue;
      commands[commands.length - 1] = current.join(' ');
    }
  }
  return commands;
}

const CURL_LINES = documentedCurlLines(fs.readFileSync(new URL('../docs/api/ziik.md', import.meta.url), 'utf8'));
const DOC_HOST = 'https://example.ziik.io';

async function curl(server: TestServer, line: string, secrets: Record<string, string> = {}) {
  let command = line.replaceAll(DOC_HOST, server.url);
  for (const [placeholder, value] of Object.entries(secrets)) command = command.replaceAll(placeholder, value);
  // -s only hides the progress meter; -w appends the status so bodies without -i can be checked.
  const { stdout } = await run('bash', ['-c', command.replace(/^curl /, "curl -s -w '\\n%{http_code}' ")]);
  const lines = stdout.split('\n');
  return { status: Number(lines.pop()), output: lines.join('\n') };
}

function tokenFromMail(text: string): string {
  const match = /reset-password\?token=([\w%-]+)/.exec(text);
  assert.ok(match, `no reset link in: ${text}`);
  return decodeURIComponent(match[1]);
}

for (const engine of ENGINES) {
  describe(`/api on ${engine.name}`, () => {
    let server: TestServer;
    let mailbox: Mailbox;
    let api: string;

    before(async () => {
      mailbox = await startMailbox();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, LATCHKEY_PUBLIC_URL: 'https://auth.example.test' });
      api = `${server.url}/api`;
      // The users of the documented examples.
      await createUser(server, { username: 'example', email: 'example@example.com', password: 'thisIsMyPassword' });
      await createUser(server, { username: 'mail', email: 'mail@example.com', password: 'oldpassword' });
      await createUser(server, { username: 'integrated', email: 'sso@example.com', external: true });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });

    it('the doc has the four curl lines the tests run', () => {
      assert.equal(CURL_LINES.length, 4);
      assert.deepEqual(
        CURL_LINES.map((l) => new URL(/"(https:[^"]+)"/.exec(l)![1]).pathname),
        ['/api/authenticate', '/api/renew', '/api/password/request', '/api/password/reset'],
      );
    });

    it('authenticate, as documented with curl, answers [{jwt, expires}]', async () => {
      const { status, output } = await curl(server, CURL_LINES[0]);
      assert.equal(status, 200);
      const body = JSON.parse(output);
      assert.ok(Array.isArray(body));
      assert.equal(body.length, 1);
      assert.deepEqual(Object.keys(body[0]).sort(), ['expires', 'jwt']);
      assert.equal(Number.isInteger(body[0].expires), true);
      assert.equal(decodeJwt(body[0].jwt).exp, body[0].expires);
      assert.ok(body[0].expires - Date.now() / 1000 > 86400 - 60);
    });

    it('renew, as documented with curl (a GET), answers a fresh [{jwt, expires}]', async () => {
      const jwt = (await post(`${api}/authenticate`, { username: 'example@example.com', password: 'thisIsMyPassword' })).body[0].jwt;
      const { status, output } = await curl(server, CURL_LINES[1], { 'aaaaaaaaaa.bbbbbbbbbbb.cccccccccccc': jwt });
      assert.equal(status, 200);
      const [renewed] = JSON.parse(output);
      assert.notEqual(renewed.jwt, jwt);
      assert.equal(decodeJwt(renewed.jwt).sid, decodeJwt(jwt).sid);
      const byPost = await call(`${api}/renew`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
      assert.equal(byPost.status, 200);
      assert.ok(Array.isArray(byPost.body));
    });

    it('renew without or with a bad token answers 401', async () => {
      for (const headers of [{}, { authorization: 'Bearer junk' }, { authorization: 'Basic Zm9vOmJhcg==' }] as Record<string, string>[]) {
        const reply = await call(`${api}/renew`, { headers });
        assert.deepEqual([reply.status, reply.body], [401, { message: 'Unauthenticated.' }], JSON.stringify(headers));
        assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="api"');
      }
    });

    it('authenticate refuses a wrong password with 401, and takes real form bodies too', async () => {
      const wrong = await post(`${api}/authenticate`, { username: 'example@example.com', password: 'nope' });
      assert.deepEqual([wrong.status, wrong.body], [401, { message: 'Invalid credentials.' }]);
      const form = await call(`${api}/authenticate`, {
        body: 'username=example%40example.com&password=thisIsMyPassword',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(form.status, 200);
      assert.ok(form.body[0].jwt);
    });

    it('password request and reset, as documented with curl, answer 204 and change the password', async () => {
      const requested = await curl(server, CURL_LINES[2]);
      assert.equal(requested.status, 204);
      assert.match(requested.output, /^HTTP\/1\.1 204/);
      const mail = await mailbox.next('mail@example.com');
      const token = tokenFromMail(mail.text ?? '');
      assert.ok((mail.text ?? '').includes(`https://auth.example.test/reset-password?token=`));
      assert.ok((mail.html as string).includes('href="https://auth.example.test/reset-password?token='));

      const reset = await curl(server, CURL_LINES[3], { asd234f234asd32: token });
      assert.equal(reset.status, 204);
      assert.equal((await post(`${api}/authenticate`, { username: 'mail@example.com', password: 'newpassword' })).status, 200);
      assert.equal((await post(`${api}/authenticate`, { username: 'mail@example.com', password: 'oldpassword' })).status, 401);
      // Single use.
      const again = await curl(server, CURL_LINES[3], { asd234f234asd32: token });
      assert.equal(again.status, 400);
      assert.match(again.output, /\{"message":"This link has already been used\."\}$/);
    });

    it('password request answers 204 for unknown and externally managed users and mails nothing', async () => {
      const before = mailbox.messages.length;
      assert.equal((await post(`${api}/password/request`, { email: 'nobody@example.com' })).status, 204);
      assert.equal((await post(`${api}/password/request`, { email: 'sso@example.com' })).status, 204);
      await server.core.background.drain();
      assert.equal(mailbox.messages.length, before);
    });

    it('password request answers 422 for a malformed email', async () => {
      const reply = await post(`${api}/password/request`, { email: 'not-an-email' });
      assert.equal(reply.status, 422);
      assert.deepEqual(reply.body, {
        message: 'The email must be a valid email address.',
        errors: { email: ['The email must be a valid email address.'] },
      });
    });

    it('password reset: 422 for a mismatch or a refused password, 4xx for bad, used or expired tokens', async () => {
      // A user of its own: the documented example user's password stays what the curl lines send.
      await createUser(server, { username: 'forgetful', email: 'forgetful@example.com', password: 'forgetful-password' });
      await post(`${api}/password/request`, { email: 'forgetful@example.com' });
      const token = tokenFromMail((await mailbox.next('forgetful@example.com')).text ?? '');
      const reset = (body: Record<string, string>) =>
        post(`${api}/password/reset`, { token, email: 'forgetful@example.com', password: 'brand-new-pass', password_confirm: 'brand-new-pass', ...body });

      const refused = async (body: Record<string, string>, status: number, expected: unknown) => {
        const reply = await reset(body);
        assert.deepEqual([reply.status, reply.body], [status, expected], JSON.stringify(body));
      };
      // Laravel's 422: the message, and each field at fault with its messages.
      await refused({ password_confirm: 'something-else' }, 422, {
        message: 'The password confirmation does not match.',
        errors: { password: ['The password confirmation does not match.'] },
      });
      await refused({ password: 'short', password_confirm: 'short' }, 422, {
        message: 'Password must be at least 8 characters long.',
        errors: { password: ['Password must be at least 8 characters long.'] },
      });
      const missing = await post(`${api}/password/reset`, { token });
      assert.equal(missing.status, 422);
      assert.deepEqual(missing.body.errors, {
        email: ['The email field is required.'],
        password: ['The password field is required.'],
        password_confirm: ['The password_confirm field is required.'],
      });
      assert.equal(typeof missing.body.message, 'string');
      await refused({ token: 'made-up-token' }, 400, { message: 'This password reset token is invalid.' });
      await refused({ email: 'mail@example.com' }, 400, { message: 'This password reset token is invalid.' });

      server.clock.advance(3601);
      try {
        await refused({}, 400, { message: 'This link has expired.' });
      } finally {
        server.clock.advance(-3601);
      }
      assert.equal((await reset({})).status, 204);
      await refused({}, 400, { message: 'This link has already been used.' });
    });
  });
}
