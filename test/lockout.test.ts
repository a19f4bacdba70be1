// No one can lock a victim out: limits per client IP and per (account, IP), a per-account limit
// that slows rather than locks, and answers that never tell who exists. Several client IPs are
// simulated through LATCHKEY_TRUST_PROXY and X-Forwarded-For; time moves on the test clock, on
// the store's tallies and on Redis's.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { loadConfig, ConfigError } from '../src/platform/config.ts';
import { ENGINES, ADMIN_TOKEN, startServer, startMailbox, freshStore, post, call, createUser, type TestServer, type Mailbox, type FreshStore } from './helpers.ts';

const REDIS = process.env.TEST_REDIS_URL;
const BACKENDS = ['store', ...(REDIS ? ['redis'] : [])] as const;
const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;

const PASSWORD = 'correct-horse-battery';
const ATTACKER = '203.0.113.66';
const VICTIM = '198.51.100.7';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const from = (ip: string) => ({ 'x-forwarded-for': ip });

function codeFrom(text: string): string {
  const match = /Confirmation code: (\d{6})/.exec(text);
  assert.ok(match, `no code in: ${text}`);
  return match[1];
}

const wrongCode = (code: string) => (code === '123456' ? '654321' : '123456');

for (const engine of ENGINES) {
  for (const backend of BACKENDS) {
    describe(`lockouts on ${engine.name}, limits in the ${backend}`, () => {
      let store: FreshStore;
      let server: TestServer;
      let mailbox: Mailbox;
      let n = 0;

      before(async () => {
        mailbox = await startMailbox();
        store = await freshStore(engine);
        server = await startServer(
          engine,
          {
            LATCHKEY_TRUST_PROXY: '1',
            LATCHKEY_SMTP_URL: mailbox.url,
            LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: '12',
            ...(backend === 'redis' ? { REDIS_URL: REDIS!, LATCHKEY_REDIS_PREFIX: `latchkey-test-${crypto.randomBytes(4).toString('hex')}` } : {}),
          },
          store,
        );
      });
      after(async () => {
        await server.close();
        await store.drop();
        await mailbox.close();
      });

      /** A fresh victim for each test, so no test leans on another's counts. */
      async function victim() {
        const name = `victim${++n}`;
        await createUser(server, { username: name, email: `${name}@example.com`, password: PASSWORD });
        return { username: name, email: `${name}@example.com` };
      }

      const v1Login = (username: string, password: string, ip: string) => post(`${server.url}/v1/login`, { username, password }, from(ip));
      const ziikLogin = (email: string, password: string, ip: string) => post(`${server.url}/api/authenticate`, { username: email, password }, from(ip));
      const roypiLogin = (username: string, password: string, ip: string) =>
        post(`${server.url}/auth/access_token/`, { username, password }, from(ip));

      it('one attacking IP cannot stop the victim, from another IP, from logging in through any API', async () => {
        const { username, email } = await victim();
        for (let i = 0; i < 5; i++) assert.equal((await v1Login(username, `guess-${i}`, ATTACKER)).status, 401);
        for (let i = 0; i < 10; i++) {
          const refused = await v1Login(username, `guess-more-${i}`, ATTACKER);
          assert.equal(refused.status, 429);
          assert.deepEqual(refused.body, { status: 429, message: 'Password attempts exceeded.' });
          assert.ok(Number(refused.headers.get('retry-after')) > 0);
        }
        // Even the right password is refused to the locked-out address: it is the address that is locked.
        assert.equal((await v1Login(username, PASSWORD, ATTACKER)).status, 429);

        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 200);
        assert.equal((await ziikLogin(email, PASSWORD, VICTIM)).status, 200);
        assert.equal((await roypiLogin(username, PASSWORD, VICTIM)).status, 200);
      });

      it('the lockout counts per account, whether the login names the user or the email', async () => {
        const { username, email } = await victim();
        for (let i = 0; i < 3; i++) assert.equal((await v1Login(username, `guess-${i}`, ATTACKER)).status, 401);
        for (let i = 0; i < 2; i++) assert.equal((await ziikLogin(email, `guess-${i}`, ATTACKER)).status, 401);
        const sixth = await roypiLogin(username.toUpperCase(), 'guess-6', ATTACKER);
        assert.equal(sixth.status, 429);
        assert.match(sixth.body.detail, /^Request was throttled\. Expected available in \d+ seconds\.$/);
        assert.equal((await ziikLogin(email, PASSWORD, ATTACKER)).status, 429);
      });

      it('a lockout lasts LATCHKEY_LOCKOUT_SECONDS: still on just before, gone just after', async () => {
        const { username } = await victim();
        for (let i = 0; i < 5; i++) assert.equal((await v1Login(username, `guess-${i}`, ATTACKER)).status, 401);
        assert.equal((await v1Login(username, PASSWORD, ATTACKER)).status, 429);
        server.clock.advance(899);
        assert.equal((await v1Login(username, PASSWORD, ATTACKER)).status, 429);
        server.clock.advance(2);
        assert.equal((await v1Login(username, PASSWORD, ATTACKER)).status, 200);
      });

      it('a right password clears the failures counted so far', async () => {
        const { username } = await victim();
        for (let i = 0; i < 4; i++) assert.equal((await v1Login(username, `guess-${i}`, VICTIM)).status, 401);
        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 200);
        for (let i = 0; i < 5; i++) assert.equal((await v1Login(username, `again-${i}`, VICTIM)).status, 401, `failure ${i + 1} after the success`);
        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 429);
      });

      it('unknown names are counted and answered exactly like real ones', async () => {
        const { username } = await victim();
        const answers = async (name: string, ip: string) => {
          const seen = [];
          for (let i = 0; i < 7; i++) {
            const reply = await v1Login(name, `guess-${i}`, ip);
            seen.push({ status: reply.status, body: reply.body, retry: reply.headers.get('retry-after') !== null });
          }
          return seen;
        };
        assert.deepEqual(await answers(username, '203.0.113.10'), await answers(`ghost-of-${username}`, '203.0.113.11'));
      });

      it('many attacking IPs slow the account down, but never lock it: each attempt waits a growing delay, at most LATCHKEY_ACCOUNT_MAX_DELAY', async () => {
        const { username } = await victim();
        // 12 failures from three addresses (4 each, under the per-address lockout) reach LATCHKEY_ACCOUNT_SLOWDOWN_AFTER:
        for (let i = 0; i < 12; i++) assert.equal((await v1Login(username, `guess-${i}`, `203.0.113.${20 + (i % 3)}`)).status, 401);
        // from now on each attempt on the account waits 1 s, 2 s, 4 s... after the last one, from any address.
        const first = await v1Login(username, PASSWORD, VICTIM);
        assert.equal(first.status, 429);
        assert.deepEqual(first.body, { status: 429, message: 'Password attempts exceeded.' });
        assert.equal(first.headers.get('retry-after'), '1');
        server.clock.advance(1);
        assert.equal((await v1Login(username, 'guess-13', '203.0.113.23')).status, 401);
        const slowed = await v1Login(username, PASSWORD, VICTIM);
        assert.equal(slowed.status, 429);
        assert.equal(slowed.headers.get('retry-after'), '2');
        // Attempts refused meanwhile count nothing (else the delay would have grown to 32 s)...
        for (let i = 0; i < 5; i++) assert.equal((await v1Login(username, `during-${i}`, '203.0.113.24')).status, 429);
        server.clock.advance(2);
        // ...so once it has passed, the victim gets in.
        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 200);
        // The delay never exceeds LATCHKEY_ACCOUNT_MAX_DELAY (60 s): after many more failures, 60 s later it opens again.
        for (let i = 0; i < 12; i++) assert.equal((await v1Login(username, `guess-${i}`, `203.0.113.${30 + (i % 3)}`)).status, 401);
        for (let i = 0; i < 10; i++) {
          server.clock.advance(60);
          assert.equal((await v1Login(username, `slow-${i}`, `203.0.113.${40 + i}`)).status, 401);
        }
        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 429);
        server.clock.advance(59);
        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 429);
        server.clock.advance(1);
        assert.equal((await v1Login(username, PASSWORD, VICTIM)).status, 200);
      });

      it('one attacking IP cannot spend the victim\'s reset mails nor kill the code they are typing', async () => {
        const { username } = await victim();
        assert.equal((await post(`${server.url}/v1/forgot-password`, { username }, from(VICTIM))).status, 204);
        const code = codeFrom((await mailbox.next(`${username}@example.com`)).text ?? '');

        // The attacker asks for resets and guesses codes, from one address.
        for (let i = 0; i < 6; i++) assert.equal((await post(`${server.url}/v1/forgot-password`, { username }, from(ATTACKER))).status, 204);
        await server.core.background.drain();
        const confirm = (confirmation_code: string, ip: string, password = 'brand-new-password') =>
          post(`${server.url}/v1/forgot-password-confirm`, { username, password, confirmation_code }, from(ip));
        for (let i = 0; i < 5; i++) {
          assert.deepEqual((await confirm(wrongCode(code), ATTACKER)).body, { status: 401, message: 'Invalid verification code provided, please try again.' });
        }
        for (let i = 0; i < 5; i++) {
          const refused = await confirm(wrongCode(code), ATTACKER);
          assert.deepEqual(refused.body, { status: 429, message: 'Attempt limit exceeded, please try after some time.' });
        }
        // Only LATCHKEY_RESET_MAILS_PER_ACCOUNT_IP (2) of the attacker's six requests mailed the victim.
        await mailbox.next(`${username}@example.com`);
        await mailbox.next(`${username}@example.com`);
        await assert.rejects(mailbox.next(`${username}@example.com`, 300));

        // The code the victim already had still works, and they can still have mail sent.
        assert.equal((await confirm(code, VICTIM)).status, 204);
        assert.equal((await v1Login(username, 'brand-new-password', VICTIM)).status, 200);
        assert.equal((await post(`${server.url}/v1/forgot-password`, { username }, from(VICTIM))).status, 204);
        await mailbox.next(`${username}@example.com`);
      });

      it('a code still dies after LATCHKEY_CODE_MAX_ATTEMPTS wrong guesses from everywhere', async () => {
        const { username } = await victim();
        await post(`${server.url}/v1/forgot-password`, { username }, from(VICTIM));
        const code = codeFrom((await mailbox.next(`${username}@example.com`)).text ?? '');
        const confirm = (confirmation_code: string, ip: string) =>
          post(`${server.url}/v1/forgot-password-confirm`, { username, password: 'brand-new-password', confirmation_code }, from(ip));
        for (let i = 0; i < 10; i++) assert.equal((await confirm(wrongCode(code), `203.0.113.${100 + Math.floor(i / 5)}`)).status, 401);
        assert.deepEqual((await confirm(code, VICTIM)).body, { status: 401, message: 'Invalid verification code provided, please try again.' });
      });

      it('the reset-mail caps: per (account, IP) and per account, each for an hour', async () => {
        const { email } = await victim();
        const ask = (ip: string) => post(`${server.url}/api/password/request`, { email }, from(ip));
        const mails = async () => {
          await server.core.background.drain();
          return mailbox.messages.filter((m) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address === email).length;
        };
        for (let i = 0; i < 3; i++) assert.equal((await ask(VICTIM)).status, 204);
        await mailbox.next(email);
        await mailbox.next(email);
        assert.equal(await mails(), 2, 'two per (account, IP)');
        for (const ip of ['203.0.113.201', '203.0.113.202']) for (let i = 0; i < 2; i++) await ask(ip);
        for (let i = 0; i < 3; i++) await mailbox.next(email);
        await assert.rejects(mailbox.next(email, 300));
        assert.equal(await mails(), 5, 'five per account');
        server.clock.advance(3595);
        await ask('203.0.113.203');
        assert.equal(await mails(), 5, 'still capped just before the hour');
        server.clock.advance(6);
        await ask(VICTIM);
        await mailbox.next(email);
      });

      it('reset requests per IP are capped at LATCHKEY_RESET_REQUESTS_PER_IP an hour, whatever the name', async () => {
        const ip = '203.0.113.77';
        for (let i = 0; i < 20; i++) assert.equal((await post(`${server.url}/v1/forgot-password`, { username: `anyone-${i}` }, from(ip))).status, 204);
        const refused = await post(`${server.url}/api/password/request`, { email: 'someone@example.com' }, from(ip));
        assert.equal(refused.status, 429);
        assert.deepEqual(refused.body, { message: 'Too many reset requests; try again later.' });
        assert.equal((await post(`${server.url}/v1/forgot-password`, { username: 'anyone' }, from('203.0.113.78'))).status, 204);
      });

      it('confirm answers an unknown user exactly as a known one, wrong, expired or over the limit', async () => {
        const { username } = await victim();
        await post(`${server.url}/v1/forgot-password`, { username }, from(VICTIM));
        const code = codeFrom((await mailbox.next(`${username}@example.com`)).text ?? '');
        const answers = async (name: string, ip: string) => {
          const seen = [];
          for (let i = 0; i < 7; i++) {
            const reply = await post(`${server.url}/v1/forgot-password-confirm`, { username: name, password: 'brand-new-password', confirmation_code: wrongCode(code) }, from(ip));
            seen.push({ status: reply.status, body: reply.body, retry: reply.headers.get('retry-after') !== null });
          }
          return seen;
        };
        assert.deepEqual(await answers(username, '203.0.113.50'), await answers(`nobody-${username}`, '203.0.113.51'));
        // An expired code reads like a wrong one.
        server.clock.advance(3601);
        const expired = await post(`${server.url}/v1/forgot-password-confirm`, { username, password: 'brand-new-password', confirmation_code: code }, from(VICTIM));
        assert.deepEqual(expired.body, { status: 401, message: 'Invalid verification code provided, please try again.' });
      });

      it('every unauthenticated path spends the client IP\'s budget', async () => {
        const limited = await startServer(engine, { LATCHKEY_TRUST_PROXY: '1', LATCHKEY_IP_RATE_LIMIT: '3' }, store);
        try {
          const paths: [string, Record<string, string>, number][] = [
            ['/v1/login', { username: 'nobody', password: 'whatever-1' }, 401],
            ['/auth/access_token/', { username: 'nobody', password: 'whatever-1' }, 400],
            ['/api/authenticate', { username: 'nobody@example.com', password: 'whatever-1' }, 401],
            ['/v1/forgot-password', { username: 'nobody' }, 204],
            ['/v1/forgot-password-confirm', { username: 'nobody', password: 'whatever-1', confirmation_code: '123456' }, 401],
            ['/api/password/request', { email: 'nobody@example.com' }, 204],
            ['/api/password/reset', { token: 'x', email: 'nobody@example.com', password: 'whatever-1', password_confirm: 'whatever-1' }, 400],
            ['/v1/new-password-required', { session: 'x', username: 'nobody', new_password: 'whatever-1' }, 401],
          ];
          for (const [i, [path, body, status]] of paths.entries()) {
            const ip = `192.0.2.${i + 1}`;
            for (let k = 0; k < 3; k++) assert.equal((await post(`${limited.url}${path}`, body, from(ip))).status, status, path);
            assert.equal((await post(`${limited.url}${path}`, body, from(ip))).status, 429, `${path} over the limit`);
          }
          const ip = '192.0.2.99';
          const page = () => call(`${limited.url}/reset-password`, { body: 'token=x&password=whatever-1&password_confirm=whatever-1', headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(ip) } });
          for (let k = 0; k < 3; k++) assert.equal((await page()).status, 400);
          const refused = await page();
          assert.equal(refused.status, 429);
          assert.match(refused.text, /Too many attempts/);
          assert.ok(Number(refused.headers.get('retry-after')) > 0);
          limited.clock.advance(60);
          assert.equal((await page()).status, 400, 'a minute later the address may try again');
        } finally {
          await limited.close();
        }
      });

      it('an operator sees a lockout and lifts it, by the admin API and by the CLI', async () => {
        const { username } = await victim();
        for (let i = 0; i < 5; i++) await v1Login(username, `guess-${i}`, ATTACKER);
        const shown = await call(`${server.url}/admin/users/${username}`, { headers: admin });
        assert.equal(shown.status, 200);
        assert.equal(shown.body.lockout.locked, true);
        assert.equal(shown.body.lockout.locked_until, null);
        assert.deepEqual(shown.body.lockout.locked_ips.map((l: { ip: string }) => l.ip), [ATTACKER]);
        assert.ok(Date.parse(shown.body.lockout.locked_ips[0].until) > server.clock.now());

        const unlocked = await post(`${server.url}/admin/users/${username}/unlock`, {}, admin);
        assert.equal(unlocked.status, 200);
        assert.deepEqual(unlocked.body.lockout, { locked: false, locked_until: null, failures: 0, locked_ips: [] });
        assert.equal((await v1Login(username, PASSWORD, ATTACKER)).status, 200);

        // The CLI works on the same tallies, with no server in between.
        for (let i = 0; i < 5; i++) await v1Login(username, `guess-${i}`, ATTACKER);
        const env = { ...store.env, ...(backend === 'redis' ? { REDIS_URL: REDIS!, LATCHKEY_REDIS_PREFIX: server.config.redisPrefix } : {}) };
        const got = await cli(['users', 'get', username], env);
        assert.equal(got.code, 0, got.stderr);
        assert.equal(JSON.parse(got.stdout).lockout.locked, true);
        const lifted = await cli(['users', 'unlock', username], env);
        assert.equal(lifted.code, 0, lifted.stderr);
        assert.equal(JSON.parse(lifted.stdout).lockout.locked, false);
        assert.equal((await v1Login(username, PASSWORD, ATTACKER)).status, 200);
        const events = await call(`${server.url}/admin/users/${username}/events`, { headers: admin });
        assert.equal(events.body.events.filter((e: { kind: string }) => e.kind === 'user_unlocked').length, 2);
      });
    });
  }

  describe(`LATCHKEY_TRUST_PROXY on ${engine.name}`, () => {
    it('unset, X-Forwarded-For is ignored: rotating it does not escape the lockout', async () => {
      const server = await startServer(engine);
      try {
        await createUser(server, { username: 'neo', email: 'neo@example.com', password: PASSWORD });
        for (let i = 0; i < 5; i++) assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: `guess-${i}` }, from(`203.0.113.${i}`))).status, 401);
        assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: PASSWORD }, from('198.51.100.1'))).status, 429);
      } finally {
        await server.close();
      }
    });

    it('set to 1, the address one proxy forwarded is the client: its own budget, and its address in the session', async () => {
      const server = await startServer(engine, { LATCHKEY_TRUST_PROXY: '1' });
      try {
        await createUser(server, { username: 'neo', email: 'neo@example.com', password: PASSWORD });
        // A client may prepend anything; only the address the trusted proxy appended counts.
        for (let i = 0; i < 5; i++) {
          assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: `guess-${i}` }, from(`10.9.9.${i}, 203.0.113.5`))).status, 401);
        }
        assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: PASSWORD }, from('10.0.0.1, 203.0.113.5'))).status, 429);
        assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: PASSWORD }, from('203.0.113.5, 198.51.100.1'))).status, 200);
        const sessions = await call(`${server.url}/admin/users/neo/sessions`, { headers: admin });
        assert.equal(sessions.body.sessions[0].ip, '198.51.100.1');
      } finally {
        await server.close();
      }
    });

    it('set to proxy addresses, only hops from those proxies are believed', async () => {
      const server = await startServer(engine, { LATCHKEY_TRUST_PROXY: 'loopback, 10.0.0.0/8' });
      try {
        await createUser(server, { username: 'neo', email: 'neo@example.com', password: PASSWORD });
        // Loopback (the test's own socket) and 10.1.2.3 are proxies; 203.0.113.9 is the client.
        for (let i = 0; i < 5; i++) {
          assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: `guess-${i}` }, from(`203.0.113.9, 10.1.2.3`))).status, 401);
        }
        assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: PASSWORD }, from('203.0.113.9, 10.1.2.3'))).status, 429);
        assert.equal((await post(`${server.url}/v1/login`, { username: 'neo', password: PASSWORD }, from('198.51.100.1'))).status, 200);
      } finally {
        await server.close();
      }
    });
  });
}

describe('LATCHKEY_TRUST_PROXY values', () => {
  it('takes 0, a hop count, true, or proxy addresses; anything else stops the start naming it', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ LATCHKEY_TRUST_PROXY: '0' }).trustProxy, false);
    assert.equal(loadConfig({ LATCHKEY_TRUST_PROXY: '2' }).trustProxy, 2);
    assert.equal(loadConfig({ LATCHKEY_TRUST_PROXY: 'true' }).trustProxy, true);
    assert.equal(loadConfig({ LATCHKEY_TRUST_PROXY: 'loopback, 10.0.0.0/8,::1' }).trustProxy, 'loopback,10.0.0.0/8,::1');
    for (const bad of ['yes', '10.0.0.0/8; rm', 'proxy.example.com']) {
      assert.throws(() => loadConfig({ LATCHKEY_TRUST_PROXY: bad }), (e: unknown) => e instanceof ConfigError && /LATCHKEY_TRUST_PROXY/.test(e.message));
    }
  });
});

/** Runs the CLI as an operator would, on the given store. */
function cli(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
