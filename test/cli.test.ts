// The `latchkey` CLI as an operator meets it: real processes on a real store, every flag of
// every command, exit codes (0 done, 1 refused, 2 usage), JSON on stdout, messages on stderr.
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ENGINES, freshStore, startServer, post, call, createUser, ADMIN_TOKEN, type FreshStore, type TestServer } from './helpers.ts';
import { main } from '../src/cli/cli.ts';
import { jsonLines } from './processes.ts';

const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;
const VERSION = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as an operator would, with `env` on top of this process's environment. */
function cli(args: string[], env: Record<string, string>, input = ''): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** Runs many CLI calls, a few at a time (the machine is small). */
async function all<T, R>(items: T[], work: (item: T) => Promise<R>, width = 3): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]);
      }
    }),
  );
  return results;
}

/** The same command line run inside this process, for the long tables of mistakes (a process each would take minutes). */
async function inProcess(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (text) => (stdout += text), err: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

const json = (run: Run) => {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout);
};

describe('latchkey CLI: version, help and usage errors', () => {
  // A data dir that must stay empty: a usage error is caught before any store is opened.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cli-usage-'));
  const env = { LATCHKEY_DATA_DIR: dataDir };
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('--version and -V print the package version', async () => {
    for (const flag of ['--version', '-V']) {
      const run = await cli([flag], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `${VERSION}\n`);
    }
  });

  it('help lists every command; help <command> and <command> --help show its flags', async () => {
    const top = await cli(['help'], env);
    assert.equal(top.code, 0, top.stderr);
    assert.equal(top.stderr, '');
    for (const command of ['serve', 'migrate', 'users', 'keys', 'outbox', 'help']) assert.match(top.stdout, new RegExp(`^  ${command}\\b`, 'm'));
    assert.match(top.stdout, /Exit status: 0 done, 1 refused/);
    assert.equal((await inProcess(['--help'])).stdout, top.stdout);

    const viaHelp = await cli(['help', 'users', 'create'], env);
    const viaFlag = await inProcess(['users', 'create', '--help']);
    const viaShort = await inProcess(['users', 'create', '-h']);
    assert.equal(viaHelp.code, 0, viaHelp.stderr);
    assert.equal(viaFlag.stdout, viaHelp.stdout);
    assert.equal(viaShort.stdout, viaHelp.stdout);
    assert.match(viaHelp.stdout, /^Usage: latchkey users create \[options\] <username>/);
    for (const flag of ['--email <address>', '--no-email', '--password <password>', '--password-stdin', '--temporary-password <password>', '--external']) {
      assert.ok(viaHelp.stdout.includes(`  ${flag}`), `help shows ${flag}`);
    }

    const users = await inProcess(['help', 'users']);
    for (const verb of ['create', 'list', 'get', 'disable', 'enable', 'delete', 'sign-out', 'sessions', 'events', 'set-password']) {
      assert.match(users.stdout, new RegExp(`^  ${verb}\\b`, 'm'), verb);
    }
    const keys = await inProcess(['help', 'keys', 'rotate']);
    assert.match(keys.stdout, /--alg <alg>/);
    const outbox = await inProcess(['help', 'outbox']);
    assert.match(outbox.stdout, /--to <address>/);
    assert.match(outbox.stdout, /--all/);
  });

  // [arguments, what stderr must say]: each exits 2, prints nothing on stdout and opens no store.
  const mistakes: [string[], RegExp][] = [
    [['bogus'], /^latchkey: unknown command 'bogus'/],
    [['help', 'nope'], /^latchkey: no such command: nope/],
    [['help', 'users', 'nope'], /^latchkey: no such command: users nope\n/],
    [['--port', '80'], /^latchkey: unknown option '--port'/],
    [['users'], /Usage: latchkey users/],
    [['users', 'frobnicate'], /^latchkey users: unknown command 'frobnicate'/],
    [['users', 'create'], /^latchkey users create: missing required argument 'username'/],
    [['users', 'create', 'dan', 'extra', '--email', 'dan@example.com', '--external'], /too many arguments for 'create'/],
    [['users', 'create', 'dan', '--password', 'dan-password'], /needs --email ADDRESS \(or --no-email: a user without an email cannot reset a password\)/],
    [['users', 'create', 'dan', '--email', 'dan@example.com'], /needs one of --password, --password-stdin, --temporary-password or --external/],
    [['users', 'create', 'dan', '--email', 'dan@example.com', '--no-email', '--external'], /takes --email or --no-email, not both/],
    [['users', 'create', 'dan', '--no-email', '--email', 'dan@example.com', '--external'], /takes --email or --no-email, not both/],
    [['users', 'create', 'dan', '--email'], /option '--email <address>' argument missing/],
    [['users', 'create', 'dan', '--email', '--password', 'dan-password'], /'--password' is invalid\. --password is a flag: give --email a value first/],
    [['users', 'create', 'dan', '--email', 'not-an-address', '--external'], /'not-an-address' is invalid\. expected an email address/],
    [['users', 'create', 'dan', '--email', 'dan@example.com', '--password', 'dan-password', '--password-stdin'], /takes only one of --password, --password-stdin, --temporary-password and --external/],
    [['users', 'create', 'dan', '--email', 'dan@example.com', '--password', 'dan-password', '--external'], /takes only one of/],
    [['users', 'create', 'dan', '--email', 'dan@example.com', '--temporary-password', 'dan-password', '--password-stdin'], /takes only one of/],
    [['users', 'create', 'dan', '--email', 'dan@example.com', '--external', '--temporary'], /unknown option '--temporary'/],
    [['users', 'create', 'dan', '--email', 'dan@example.com', '--external', '--limit', '3'], /unknown option '--limit'/],
    [['users', 'create', 'dan', '--emial', 'dan@example.com'], /unknown option '--emial'\n\(Did you mean --email\?\)/],
    [['users', 'list', '--limit', 'ten'], /option '--limit <n>' argument 'ten' is invalid\. expected a whole number from 1 to 1000\./],
    [['users', 'list', '--limit', '-5'], /argument '-5' is invalid\. expected a whole number from 1 to 1000\./],
    [['users', 'list', '--limit', '0'], /argument '0' is invalid/],
    [['users', 'list', '--limit', '1001'], /argument '1001' is invalid/],
    [['users', 'list', '--limit', '2.5'], /argument '2.5' is invalid/],
    [['users', 'list', '--limit'], /option '--limit <n>' argument missing/],
    [['users', 'list', '--after', '-1'], /option '--after <id>' argument '-1' is invalid\. expected a whole number from 0 to 9007199254740991\./],
    [['users', 'list', '--after', '1e3'], /argument '1e3' is invalid/],
    [['users', 'list', '--after', '99999999999999999999'], /argument '99999999999999999999' is invalid/],
    [['users', 'list', '--email', 'x@example.com'], /^latchkey users list: unknown option '--email'/],
    [['users', 'list', 'alice'], /too many arguments for 'list'/],
    [['users', 'get'], /^latchkey users get: needs a username \(or --id N\)/],
    [['users', 'get', 'alice', '--id', '3'], /^latchkey users get: takes a username or --id, not both/],
    [['users', 'disable', '--id', 'alice'], /--id/],
    [['users', 'get', 'alice', 'bob'], /too many arguments for 'get'/],
    [['users', 'disable', 'alice', '--password', 'x'], /^latchkey users disable: unknown option '--password'/],
    [['users', 'enable'], /needs a username \(or --id N\)/],
    [['users', 'delete', '--all'], /unknown option '--all'/],
    [['users', 'sign-out'], /needs a username \(or --id N\)/],
    [['users', 'sessions', 'alice', '--limit', '5'], /unknown option '--limit'/],
    [['users', 'events'], /needs a username \(or --id N\)/],
    [['users', 'set-password', 'alice'], /needs exactly one of --password and --password-stdin/],
    [['users', 'set-password', 'alice', '--password', 'alice-password', '--password-stdin'], /needs exactly one of --password and --password-stdin/],
    [['users', 'set-password', 'alice', '--temporary'], /needs exactly one of --password and --password-stdin/],
    [['users', 'set-password', 'alice', '--password', '--temporary'], /--temporary is a flag: give --password a value first/],
    [['users', 'set-password', 'alice', '--external'], /unknown option '--external'/],
    [['keys'], /Usage: latchkey keys/],
    [['keys', 'rotate', '--alg', 'HS256'], /argument 'HS256' is invalid\. Allowed choices are EdDSA, ES256, RS256\./],
    [['keys', 'rotate', '--alg'], /argument missing/],
    [['keys', 'list', '--alg', 'ES256'], /unknown option '--alg'/],
    [['keys', 'drop'], /unknown command 'drop'/],
    [['migrate', '--force'], /^latchkey migrate: unknown option '--force'/],
    [['migrate', 'now'], /too many arguments for 'migrate'/],
    [['serve', '--port', '80'], /^latchkey serve: unknown option '--port'/],
    [['outbox', '--to'], /option '--to <address>' argument missing/],
    [['outbox', '--to', 'nobody'], /argument 'nobody' is invalid\. expected an email address/],
    [['outbox', '--latest'], /unknown option '--latest'/],
  ];

  function checkMistake(run: Run, [args, expected]: [string[], RegExp]) {
    const what = `latchkey ${args.join(' ')}`;
    assert.equal(run.code, 2, `${what}: exit ${run.code}\n${run.stderr}`);
    assert.equal(run.stdout, '', `${what} printed on stdout`);
    assert.match(run.stderr, expected, what);
    assert.doesNotMatch(run.stderr, /temporaryPassword|passwordStdin|afterId|temporary_password|\n\s+at /, `${what}: internal names or a stack`);
    // Every error line points at the help of the command it came from.
      if (!/^Usage:/.test(run.stderr)) assert.match(run.stderr, /\(see: latchkey help/, what);
  }

  it('refuses every malformed call with exit 2 and a message in the CLI’s own flag names', async () => {
    for (const mistake of mistakes) checkMistake(await inProcess(mistake[0]), mistake);
  });

  it('a real process refuses the same way, before opening any store', async () => {
    // One of each kind: unknown command, unknown flag, missing value, bad number, two sources, no email.
    const picked = [
      'bogus',
      'users frobnicate',
      'users create dan --password dan-password',
      'users create dan --email dan@example.com --no-email --external',
      'users create dan --email dan@example.com --password dan-password --password-stdin',
      'users create dan --email',
      'users list --limit -5',
      'users list --after 1e3',
      'keys rotate --alg HS256',
    ];
    const sample = mistakes.filter(([args]) => picked.includes(args.join(' ')));
    assert.equal(sample.length, picked.length);
    const runs = await all(sample, ([args]) => cli(args, env));
    runs.forEach((run, i) => checkMistake(run, sample[i]));
    assert.deepEqual(fs.readdirSync(dataDir), [], 'no store was opened');
  });

  it('a configuration error exits 2 naming the variable', async () => {
    const run = await cli(['users', 'list'], { ...env, LATCHKEY_PASSWORD_MIN_LENGTH: 'short' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^latchkey: configuration error: LATCHKEY_PASSWORD_MIN_LENGTH must be an integer/);
  });
});

for (const engine of ENGINES) {
  describe(`latchkey CLI on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;

    before(async () => {
      store = await freshStore(engine);
      // No LATCHKEY_SMTP_URL: reset mail goes to the outbox the CLI reads.
      server = await startServer(engine, {}, store);
      // Each test's own users, so any test runs alone (the creation test makes its own by CLI).
      await createUser(server, { username: 'lia', email: 'lia@example.com', password: 'lia-password' });
      await createUser(server, { username: 'ext', email: 'ext@example.com', external: true });
      await createUser(server, { username: 'mo', email: 'mo@example.com', password: 'mo-password' });
      await createUser(server, { username: 'nia', email: 'nia@example.com', password: 'nia-password' });
      await createUser(server, { username: 'ola', email: 'ola@example.com', password: 'ola-password' });
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    const run = (args: string[], input?: string) => cli(args, store.env, input);

    it('users create takes each password source, --email or --no-email, and the server sees the user', async () => {
      const [kept, stdin, temporary, external, noEmail] = await all(
        [
          [['users', 'create', 'Ann', '--email', 'Ann@Example.com', '--password', 'ann-password']],
          [['users', 'create', 'ben', '--email', 'ben@example.com', '--password-stdin'], 'ben-password\n'],
          [['users', 'create', 'cat', '--email', 'cat@example.com', '--temporary-password', 'cat-temporary']],
          [['users', 'create', 'dee', '--email', 'dee@example.com', '--external']],
          [['users', 'create', 'eve', '--no-email', '--password', 'eve-password']],
        ] as [string[], string?][],
        ([args, input]) => run(args, input),
      );
      assert.deepEqual(
        [kept, stdin, temporary, external, noEmail].map(json).map((u) => [u.username, u.email, u.status, u.managed_by]),
        [
          ['ann', 'ann@example.com', 'active', 'local'],
          ['ben', 'ben@example.com', 'active', 'local'],
          ['cat', 'cat@example.com', 'force_change_password', 'local'],
          ['dee', 'dee@example.com', 'active', 'external'],
          ['eve', null, 'active', 'local'],
        ],
      );
      assert.equal((await post(`${server.url}/v1/login`, { username: 'ann', password: 'ann-password' })).status, 200);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'ben', password: 'ben-password' })).status, 200);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'cat', password: 'cat-temporary' })).body.challenge_name, 'NEW_PASSWORD_REQUIRED');
      assert.equal((await post(`${server.url}/v1/login`, { username: 'eve', password: 'eve-password' })).status, 200);
    });

    it('refusals exit 1 with the core’s code: a taken name, an unknown user, a weak password, an external user’s password', async () => {
      const [taken, missing, weak, external] = await all(
        [
          ['users', 'create', 'LIA', '--email', 'other@example.com', '--external'],
          ['users', 'get', 'nobody'],
          ['users', 'create', 'fay', '--email', 'fay@example.com', '--password', 'short'],
          ['users', 'set-password', 'ext', '--password', 'ext-password'],
        ],
        (args) => run(args),
      );
      for (const refused of [taken, missing, weak, external]) {
        assert.equal(refused.code, 1, refused.stderr);
        assert.equal(refused.stdout, '');
      }
      assert.match(taken.stderr, /^latchkey: user_exists: /);
      assert.match(missing.stderr, /^latchkey: user_not_found: /);
      assert.match(weak.stderr, /^latchkey: password_policy: /);
      assert.equal(external.stderr, 'latchkey: externally_managed: this user signs in through an external identity provider and has no password here\n');
    });

    it('an external user gets each API’s ordinary wrong-credentials answer; the operator’s trail says why', async () => {
      // ext is external: no password here, whatever is tried.
      const v1 = await post(`${server.url}/v1/login`, { username: 'ext', password: 'any-password' });
      assert.deepEqual([v1.status, v1.body], [401, { status: 401, message: 'Incorrect username or password.' }]);
      const roypi = await post(`${server.url}/auth/access_token/`, { username: 'ext', password: 'any-password' });
      assert.deepEqual([roypi.status, roypi.body], [400, { non_field_errors: ['Unable to log in with provided credentials.'] }]);
      const ziik = await post(`${server.url}/api/authenticate`, { username: 'ext@example.com', password: 'any-password' });
      assert.deepEqual([ziik.status, ziik.body], [401, { message: 'Invalid credentials.' }]);
      // The same answers as for someone who does not exist.
      const nobody = await post(`${server.url}/v1/login`, { username: 'nobody', password: 'any-password' });
      assert.deepEqual([nobody.status, nobody.body], [v1.status, v1.body]);

      const events = json(await run(['users', 'events', 'ext']));
      const failures = events.filter((e: { kind: string }) => e.kind === 'login_failed');
      assert.equal(failures.length, 3);
      assert.ok(failures.every((e: { detail: string }) => e.detail === 'externally_managed'));
      // Nor can an admin give one a password, by API or CLI (the CLI's refusal is tested above).
      const setByAdmin = await post(`${server.url}/admin/users/ext/password`, { password: 'ext-password' }, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.deepEqual([setByAdmin.status, setByAdmin.body], [
        409,
        { error: 'externally_managed', message: 'this user signs in through an external identity provider and has no password here' },
      ]);
      // A local user's wrong password is not labelled so.
      await post(`${server.url}/v1/login`, { username: 'lia', password: 'wrong-password' });
      const lia = json(await run(['users', 'events', 'lia'])).filter((e: { kind: string }) => e.kind === 'login_failed');
      assert.deepEqual(lia.map((e: { detail: string | null }) => e.detail), [null]);
    });

    it('users list pages with --limit and --after', async () => {
      // Three users made now are the three last ids; before the first come the others' users.
      const made = [];
      for (const username of ['pia', 'quin', 'rex']) made.push(await createUser(server, { username, email: `${username}@example.com`, external: true }));
      const ids = made.map((u) => u.id);
      const everyone = json(await run(['users', 'list']));
      assert.deepEqual(everyone.slice(-3).map((u: { id: number }) => u.id), ids);
      const allIds = everyone.map((u: { id: number }) => u.id);
      assert.deepEqual(allIds, [...allIds].sort((a, b) => a - b));
      const [first, rest, one] = await all(
        [
          ['users', 'list', '--limit', '2'],
          ['users', 'list', '--after', String(ids[0])],
          ['users', 'list', '--limit', '1', '--after', String(ids[0] - 1)],
        ],
        (args) => run(args),
      );
      const usernames = (r: Run) => json(r).map((u: { username: string }) => u.username);
      assert.deepEqual(usernames(first), everyone.slice(0, 2).map((u: { username: string }) => u.username));
      assert.deepEqual(usernames(rest), ['quin', 'rex']);
      assert.deepEqual(usernames(one), ['pia']);
      assert.deepEqual(json(await run(['users', 'list', '--after', String(ids[2])])), []);
      // The admin API draws the same line as --limit: 1 to 1000, a larger page refused rather than cut.
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      assert.equal((await call(`${server.url}/admin/users?limit=1000`, { headers: admin })).status, 200);
      for (const limit of ['1001', '9999', '0', '-1', 'ten']) {
        const refused = await call(`${server.url}/admin/users?limit=${limit}`, { headers: admin });
        assert.deepEqual([refused.status, refused.body.error, refused.body.message], [400, 'validation', 'limit is not valid'], limit);
      }
    });

    it('set-password takes --password or --password-stdin, and --temporary', async () => {
      const stdin = json(await run(['users', 'set-password', 'mo', '--password-stdin'], 'mo-new-password\n'));
      assert.equal(stdin.status, 'active');
      assert.equal((await post(`${server.url}/v1/login`, { username: 'mo', password: 'mo-new-password' })).status, 200);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'mo', password: 'mo-password' })).status, 401);
      const temporary = json(await run(['users', 'set-password', 'mo', '--password', 'mo-temporary', '--temporary']));
      assert.equal(temporary.status, 'force_change_password');
      assert.equal((await post(`${server.url}/v1/login`, { username: 'mo', password: 'mo-temporary' })).body.challenge_name, 'NEW_PASSWORD_REQUIRED');
    });

    it('keys rotate --alg makes a key of that algorithm', async () => {
      const { kid } = json(await run(['keys', 'rotate', '--alg', 'ES256']));
      const keys = json(await run(['keys', 'list']));
      assert.equal(keys.find((k: { kid: string }) => k.kid === kid)?.alg, 'ES256');
    });

    it('outbox prints the latest mail decoded; --to picks a recipient, --all lists them oldest first', async () => {
      const empty = await run(['outbox']);
      assert.equal(empty.code, 1);
      assert.match(empty.stderr, /^latchkey: no mail in .*outbox\n$/);
      assert.deepEqual(json(await run(['outbox', '--all'])), []);

      const outbox = path.join(store.env.LATCHKEY_DATA_DIR, 'outbox');
      const mails = () => (fs.existsSync(outbox) ? fs.readdirSync(outbox).length : 0);
      for (const [username, expected] of [['nia', 1], ['ola', 2]] as const) {
        assert.equal((await post(`${server.url}/v1/forgot-password`, { username })).status, 204);
        // The mail is written after the answer; wait for the file (bounded by the test runner, not asserted).
        while (mails() < expected) await new Promise((resolve) => setTimeout(resolve, 20));
      }

      const latest = json(await run(['outbox']));
      assert.deepEqual(latest.to, ['ola@example.com']);
      assert.equal(latest.subject, 'Your password reset code');
      assert.match(latest.text, /Hello ola,[\s\S]*Confirmation code: \d{6}/);
      assert.ok(latest.file.startsWith(outbox));

      const toNia = json(await run(['outbox', '--to', 'NIA@example.com']));
      assert.deepEqual(toNia.to, ['nia@example.com']);
      const code = /Confirmation code: (\d{6})/.exec(toNia.text)![1];
      // What the outbox shows is the real code: it resets the password.
      const confirmed = await post(`${server.url}/v1/forgot-password-confirm`, { username: 'nia', confirmation_code: code, password: 'nia-reset-password' });
      assert.equal(confirmed.status, 204, confirmed.text);

      const listed = json(await run(['outbox', '--all']));
      assert.deepEqual(listed.map((m: { to: string[] }) => m.to[0]), ['nia@example.com', 'ola@example.com']);
      assert.deepEqual(json(await run(['outbox', '--all', '--to', 'ola@example.com'])).map((m: { to: string[] }) => m.to[0]), ['ola@example.com']);

      const nobody = await run(['outbox', '--to', 'nobody@example.com']);
      assert.equal(nobody.code, 1);
      assert.match(nobody.stderr, /^latchkey: no mail to nobody@example.com in /);
      const smtp = await cli(['outbox'], { ...store.env, LATCHKEY_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cli-')), LATCHKEY_SMTP_URL: 'smtp://127.0.0.1:1' });
      assert.match(smtp.stderr, /LATCHKEY_SMTP_URL is set, so mail is sent by SMTP instead/);
    });
  });
}

describe('latchkey CLI: which store it opens', () => {
  const ROOT = path.resolve(new URL('..', import.meta.url).pathname);

  it('the default data dir is the install’s ./data, wherever the command runs from (as the server’s)', async () => {
    const { loadConfig } = await import('../src/platform/config.ts');
    const cwd = process.cwd();
    const elsewhere = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cwd-')));
    process.chdir(elsewhere);
    try {
      assert.equal(loadConfig({}).dataDir, path.join(ROOT, 'data'));
      // A directory given relative is the caller's, as any path on a command line.
      assert.equal(loadConfig({ LATCHKEY_DATA_DIR: 'mine' }).dataDir, path.join(elsewhere, 'mine'));
    } finally {
      process.chdir(cwd);
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('run from another directory, `users list` creates no ./data there and says which store it looked at', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cwd-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' };
      delete env.LATCHKEY_DATA_DIR;
      delete env.DATABASE_URL;
      const child = spawn(process.execPath, [CLI, 'users', 'list'], { cwd, env });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.resume();
      await new Promise((resolve) => child.on('close', resolve));
      assert.deepEqual(fs.readdirSync(cwd), [], 'nothing was created in the working directory');
      assert.ok(stderr.includes(`sqlite:${path.join(ROOT, 'data', 'latchkey.sqlite')}`), stderr);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

for (const engine of ENGINES) {
  describe(`latchkey CLI on a store that does not exist yet, on ${engine.name}`, () => {
    let store: FreshStore;
    let env: Record<string, string>;
    // A store of each test's own that does not exist yet: a test that makes one leaves none for the next.
    beforeEach(async () => {
      store = await freshStore(engine);
      // The data dir itself does not exist: nothing may create it but a command that creates a store.
      env = { ...store.env, LATCHKEY_DATA_DIR: path.join(store.env.LATCHKEY_DATA_DIR, 'missing') };
    });
    afterEach(async () => store.drop());

    it('commands that read refuse with exit 1, naming the store, and create nothing', async () => {
      const reads = [['users', 'list'], ['users', 'get', 'alice'], ['users', 'export'], ['users', 'sessions', 'alice'], ['users', 'disable', 'alice'], ['keys', 'list'], ['keys', 'rotate']];
      const runs = await all(reads, (args) => cli(args, env));
      runs.forEach((run, i) => {
        assert.equal(run.code, 1, `${reads[i].join(' ')}: ${run.stderr}`);
        assert.equal(run.stdout, '', reads[i].join(' '));
        assert.match(run.stderr, /^latchkey: no store at (sqlite:\S+\/missing\/latchkey\.sqlite|postgresql:\/\/\S+): /, reads[i].join(' '));
        assert.match(run.stderr, /LATCHKEY_DATA_DIR|DATABASE_URL/);
      });
      assert.equal(fs.existsSync(env.LATCHKEY_DATA_DIR), false, 'no data dir was created');
      if (engine.name === 'postgres') {
        const { default: postgres } = await import('postgres');
        const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });
        const tables = await sql`select table_name from information_schema.tables where table_schema = 'public'`;
        await sql.end();
        assert.deepEqual([...tables], [], 'no schema was created');
      }
    });

    it('a command that makes a store says on stderr which store it created', async () => {
      const made = await cli(['users', 'create', 'alice', '--email', 'alice@example.com', '--password', 'alice-password'], { ...env, LOG_LEVEL: 'info' });
      assert.equal(made.code, 0, made.stderr);
      const [created] = jsonLines(made.stderr);
      assert.equal(created.level, 40, made.stderr);
      assert.match(created.msg, /^store (sqlite:\S+\/missing\/latchkey\.sqlite|postgresql:\/\/\S+): new: created the schema/);
      const listed = await cli(['users', 'list'], { ...env, LOG_LEVEL: 'info' });
      assert.deepEqual(json(listed).map((u: { username: string }) => u.username), ['alice']);
      assert.deepEqual(jsonLines(listed.stderr).map((line) => [line.level, line.msg]), [[30, `store ${created.store}`]]);
    });

    it('every command that writes to standard output stops quietly when its reader goes away (`users export | head`)', async () => {
      // `users get alice` below needs an alice, as much as export needs the rows.
      const rows = [JSON.stringify({ username: 'alice', email: 'alice@example.com' }), ...Array.from({ length: 3000 }, (_, i) => JSON.stringify({ username: `pipe_${i}` }))].join('\n') + '\n';
      const imported = await cli(['users', 'import', '-', '--format', 'jsonl'], env, rows);
      assert.equal(imported.code, 0, imported.stderr);
      const commands = [['users', 'export'], ['users', 'list', '--limit', '1000'], ['users', 'get', 'alice'], ['keys', 'list'], ['migrate'], ['--help'], ['--version'], ['help', 'users']];
      const runs = await all(commands, (args) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
        // The reader is gone before the command writes a byte: every write fails with EPIPE.
        child.stdout.destroy();
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
      });
      runs.forEach((run, i) => {
        assert.equal(run.stderr, '', commands[i].join(' '));
        // What a shell reports for a process ended by SIGPIPE, as `yes | head` ends `yes`.
        assert.equal(run.code, 141, commands[i].join(' '));
      });
      // The shell's own pipe, as an operator types it.
      const shell = spawn('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${CLI}" users export | head -n 2 >/dev/null`], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' } });
      let stderr = '';
      shell.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise((resolve) => shell.on('close', resolve));
      assert.equal(stderr, '');
      assert.equal(code, 141);
    });
  });
}
