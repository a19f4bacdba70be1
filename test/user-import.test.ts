// Bringing users in bulk: `latchkey users import` (CSV, JSON Lines), POST /admin/users/import, and
// `latchkey users export`. Migrated users log in with their old password through all three APIs
// and are rehashed to argon2id on that login.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { ENGINES, startServer, freshStore, post, call, createUser, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';
import { loadForeignHashes, type SourceUser } from './foreign-hash-fixtures.ts';

const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;
// A Django user table and a PHP user list, made by Django and PHP themselves (test/fixtures).
const { django_users: DJANGO, php_users: PHP } = loadForeignHashes();
const CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(store: FreshStore, args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...store.env, LOG_LEVEL: 'silent' }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function importFile(store: FreshStore, file: string, ...flags: string[]) {
  const result = await cli(store, ['users', 'import', file, ...flags]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** Statuses of a login through each API: Wikimedia and Roypi by username, Ziik by email. */
async function loginEverywhere(server: TestServer, username: string, email: string, password: string) {
  const wikimedia = await post(`${server.url}/v1/login`, { username, password });
  const roypi = await post(`${server.url}/auth/access_token/`, { username, password });
  const ziik = await post(`${server.url}/api/authenticate`, { username: email, password });
  return [wikimedia.status, roypi.status, ziik.status];
}

/** The first login rehashes to argon2id; then all three APIs take the old password. */
async function assertMigrates(server: TestServer, user: SourceUser) {
  const before = (await server.core.store.userByUsername(user.username.toLowerCase()))!;
  assert.doesNotMatch(before.password_hash!, CURRENT, `${user.username} starts with its foreign hash`);
  const first = await post(`${server.url}/v1/login`, { username: user.username, password: user.password });
  assert.equal(first.status, 200, `${user.username}: ${first.text}`);
  const after = (await server.core.store.userByUsername(user.username.toLowerCase()))!;
  assert.match(after.password_hash!, CURRENT, `${user.username} is rehashed at its first login`);
  assert.deepEqual(await loginEverywhere(server, user.username, user.email, user.password), [200, 200, 200], user.username);
  assert.deepEqual(await loginEverywhere(server, user.username, user.email, user.password + 'x'), [401, 400, 401], user.username);
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-import-'));

for (const engine of ENGINES) {
  describe(`users import and export on ${engine.name}`, () => {
    // Each test imports into a store of its own: imports keep their rows' ids, so one test's users
    // would take the ids another test's file brings.
    let store: FreshStore;
    let server: TestServer;
    let dir: string;
    beforeEach(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, {}, store);
      dir = tmp();
    });
    afterEach(async () => {
      await server.close();
      await store.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a Django user table dumped to CSV is imported by the CLI; every user logs in with their old password and is rehashed', async () => {
      const users: SourceUser[] = DJANGO.users;
      assert.deepEqual(users.map((u) => u.username), ['Dj_Alice', 'dj_bob', 'dj_carol', 'dj_dave', 'dj_erin', 'dj_frank']);
      assert.equal(users[5].active, false);
      const csv = path.join(dir, 'django-users.csv');
      fs.writeFileSync(csv, DJANGO.csv);
      const summary = await importFile(store, csv);
      assert.deepEqual([summary.imported, summary.updated, summary.skipped, summary.rejected], [6, 0, 0, 0]);
      assert.equal(fs.existsSync(`${csv}.rejects.jsonl`), false, 'no rejects, no rejects file');

      // Django's ids and join times are kept; the inactive user is disabled.
      const lines = fs.readFileSync(csv, 'utf8').trim().split('\n').slice(1);
      const alice = (await server.core.store.userByUsername('dj_alice'))!;
      assert.equal(alice.id, Number(lines[0].split(',')[0]));
      assert.equal(new Date(alice.created_at).toISOString().slice(0, 19), lines[0].split(',').at(-1)!.replace(' ', 'T').slice(0, 19));
      assert.equal((await server.core.store.userByUsername('dj_frank'))!.status, 'disabled');
      const disabled = await post(`${server.url}/v1/login`, { username: 'dj_frank', password: 'frank-password-1' });
      assert.deepEqual([disabled.status, disabled.body.message], [401, 'User is disabled.']);

      for (const user of users.slice(0, 5)) await assertMigrates(server, user);
      // Imported with its own ids, the store still numbers new users after them.
      const created = await createUser(server, { username: 'after_django', email: 'after.django@example.com', password: 'after-password-1' });
      assert.ok(created.id > Math.max(...lines.map((line) => Number(line.split(',')[0]))));
    });

    it('progress: a bar with rate and ETA on a terminal, plain lines otherwise', async () => {
      const file = path.join(dir, 'progress.jsonl');
      fs.writeFileSync(file, Array.from({ length: 50 }, (_, i) => JSON.stringify({ username: `progress_${i}` })).join('\n') + '\n');
      const plain = await cli(store, ['users', 'import', file]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stderr, /^import: 50 rows \(100%\), 50 imported, 0 updated, 0 skipped, 0 rejected, \d+ rows\/s$/m);
      assert.doesNotMatch(plain.stderr, /\x1b\[/, 'no terminal control codes in a log');
      // util-linux `script` gives the CLI a terminal.
      const env = Object.entries({ ...store.env, LOG_LEVEL: 'silent' }).map(([k, v]) => `${k}='${v}'`).join(' ');
      const tty = await new Promise<string>((resolve) =>
        execFile('script', ['-qec', `env ${env} ${process.execPath} ${CLI} users import --update ${file}`, '/dev/null'], (_e, stdout) => resolve(stdout)),
      );
      assert.match(tty, /import \[[█░]+\] 100% \| 50 rows \| \d+ rows\/s \| ETA \d+s/);
      assert.match(tty, /"skipped": 50/);
    });

    it('a bcrypt user list from PHP is streamed to POST /admin/users/import; every user logs in and is rehashed', async () => {
      const users: SourceUser[] = PHP.users;
      assert.equal(users.length, 5);
      const body = PHP.jsonl;
      assert.match(body, /"password_hash":"\$2y\$06\$/);
      const reply = await call(`${server.url}/admin/users/import`, { body, headers: { ...admin, 'content-type': 'application/x-ndjson' } });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.body, { imported: 5, updated: 0, skipped: 0, rejected: 0, rejects: [] });
      for (const user of users) await assertMigrates(server, user);
    });

    it('the admin import streams bodies past the JSON body limit, needs the admin token and JSON Lines', async () => {
      const rows = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ username: `bulk_${i}`, email: `bulk.${i}@example.com`, status: 'active' }));
      const body = rows.join('\n') + '\n';
      assert.ok(body.length > 64 * 1024);
      const unauthorized = await call(`${server.url}/admin/users/import`, { body, headers: { 'content-type': 'application/x-ndjson' } });
      assert.equal(unauthorized.status, 401);
      assert.equal(await server.core.store.userByUsername('bulk_0'), undefined);
      const wrongType = await call(`${server.url}/admin/users/import`, { body: '{"username":"x"}', headers: { ...admin, 'content-type': 'application/json' } });
      assert.equal(wrongType.status, 415);
      assert.equal(wrongType.body.error, 'unsupported_media_type');
      const reply = await call(`${server.url}/admin/users/import`, { body, headers: { ...admin, 'content-type': 'application/x-ndjson' } });
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.imported, 1500);
      // No password anywhere: external users, who cannot log in here (without LATCHKEY_MIGRATE_FROM).
      const user = (await server.core.store.userByUsername('bulk_1499'))!;
      assert.equal(user.managed_by, 'external');
      assert.equal(user.password_hash, null);
      const again = await call(`${server.url}/admin/users/import`, { body, headers: { ...admin, 'content-type': 'application/x-ndjson' } });
      assert.deepEqual([again.body.imported, again.body.skipped], [0, 1500]);
    });

    it('every bad row is rejected with its line and reason, and the rest go in', async () => {
      await createUser(server, { username: 'taken', email: 'taken@example.com', password: 'taken-password-1' });
      const rows = [
        { username: 'good_1', email: 'good1@example.com', password: 'plain-password-1' }, // line 1
        { email: 'nobody@example.com' }, // 2
        { username: 'bad hash', password_hash: 'md5$salt$5f4dcc3b5aa765d61d8327deb882cf99' }, // 3
        { username: 'badhash', password_hash: 'md5$salt$5f4dcc3b5aa765d61d8327deb882cf99' }, // 4
        { username: 'bademail', email: 'not-an-email' }, // 5
        { username: 'badstatus', status: 'superuser' }, // 6
        { username: 'both', password: 'plain-password-1', password_hash: '$2y$06$' + 'a'.repeat(53) }, // 7
        { username: 'badtime', created_at: 'yesterday' }, // 8
        { username: 'stealer', email: 'taken@example.com' }, // 9
        { username: 'extra', role: 'admin' }, // 10
        { username: 'shortpw', password: 'short' }, // 11
        { username: 'badid', id: -3 }, // 12
        { username: 'good_2', email: 'good2@example.com', created_at: '2020-02-03T04:05:06.789Z' }, // 13
      ];
      const file = path.join(dir, 'mixed.jsonl');
      const lines = rows.map((row) => JSON.stringify(row));
      lines.splice(13, 0, '{not json', '', '["an","array"]'); // lines 14, 15 (blank: ignored), 16
      fs.writeFileSync(file, lines.join('\n') + '\n');
      const summary = await importFile(store, file);
      assert.deepEqual([summary.imported, summary.rejected], [2, 13]);
      assert.equal(summary.rejects_file, `${file}.rejects.jsonl`);
      const rejects = fs.readFileSync(`${file}.rejects.jsonl`, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
      // Rows refused on sight are reported at once, those refused against the store when their batch is written.
      assert.deepEqual(
        rejects.map((r) => r.line).sort((x, y) => x - y),
        [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16],
      );
      const reasons = Object.fromEntries(rejects.map((r) => [r.line, r.reason]));
      assert.equal(reasons[2], 'username is required');
      assert.match(reasons[3], /^username must be/);
      assert.equal(reasons[4], 'password_hash is in an unknown or unsupported format');
      assert.equal(reasons[5], 'email is not a valid address');
      assert.match(reasons[6], /^status must be one of/);
      assert.equal(reasons[7], 'give password_hash or password, not both');
      assert.equal(reasons[8], 'created_at must be an ISO 8601 time');
      assert.equal(reasons[9], 'email belongs to another user');
      assert.equal(reasons[10], 'unknown field: role');
      assert.match(reasons[11], /at least 8 characters/);
      assert.equal(reasons[12], `id must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}; to keep another system's id, give it as legacy_id and leave id out`);
      assert.equal(reasons[14], 'not valid JSON');
      assert.equal(reasons[16], 'a row must be an object');
      // The rejects never echo a password or hash.
      assert.doesNotMatch(fs.readFileSync(`${file}.rejects.jsonl`, 'utf8'), /plain-password|md5\$|\$2y\$/);

      const good = (await server.core.store.userByUsername('good_1'))!;
      assert.match(good.password_hash!, CURRENT);
      assert.deepEqual(await loginEverywhere(server, 'good_1', 'good1@example.com', 'plain-password-1'), [200, 200, 200]);
      assert.equal((await server.core.store.userByUsername('good_2'))!.created_at, Date.parse('2020-02-03T04:05:06.789Z'));
      assert.equal((await server.core.store.userByUsername('taken'))!.email, 'taken@example.com');

      // A CSV row with the wrong number of fields, and a header with a column we do not know.
      const csv = path.join(dir, 'short.csv');
      fs.writeFileSync(csv, 'username,email\ncsv_ok,csv.ok@example.com\ncsv_short\ncsv"quote,x@example.com\n"csv,comma",c@example.com\n');
      const csvSummary = await importFile(store, csv);
      assert.deepEqual([csvSummary.imported, csvSummary.rejected], [2, 2]);
      const csvRejects = fs.readFileSync(`${csv}.rejects.jsonl`, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
      assert.deepEqual(csvRejects.map((r) => r.line), [3, 4]);
      assert.equal(csvRejects[0].reason, 'expected 2 fields, found 1');
      assert.match(csvRejects[1].reason, /^not valid CSV: Invalid Opening Quote/);
      assert.ok(await server.core.store.userByUsername('csv,comma'));
      const badHeader = path.join(dir, 'header.csv');
      fs.writeFileSync(badHeader, 'user,email\nx,y@example.com\n');
      const refused = await cli(store, ['users', 'import', badHeader]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /unknown column: user/);
      const unknownFormat = await cli(store, ['users', 'import', path.join(dir, 'users.txt')]);
      assert.equal(unknownFormat.code, 2);
      assert.match(unknownFormat.stderr, /--format/);
      const missing = await cli(store, ['users', 'import', path.join(dir, 'missing.csv')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no such file/);
    });

    it('re-running an import changes nothing; --update updates, and a new password ends the sessions', async () => {
      const file = path.join(dir, 'rerun.jsonl');
      const write = (rows: object[]) => fs.writeFileSync(file, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
      write([
        { username: 'rerun_a', email: 'rerun.a@example.com', password: 'rerun-password-a' },
        { username: 'rerun_b', email: 'rerun.b@example.com', password_hash: '$2y$06$' + 'b'.repeat(53), status: 'active' },
        // The same user twice in one file: the second row sees the first.
        { username: 'rerun_a', email: 'rerun.a@example.com' },
      ]);
      assert.deepEqual(pick(await importFile(store, file)), [2, 0, 1, 0]);
      const snapshot = async () => (await server.core.store.usersMatching({ usernames: ['rerun_a', 'rerun_b'], emails: [], ids: [] })).sort((x, y) => x.id - y.id);
      const first = await snapshot();
      assert.deepEqual(pick(await importFile(store, file)), [0, 0, 3, 0]);
      assert.deepEqual(await snapshot(), first, 're-running changes nothing');
      assert.deepEqual(pick(await importFile(store, file, '--update')), [0, 0, 3, 0], 'an update that changes nothing is a skip');

      const login = await post(`${server.url}/v1/login`, { username: 'rerun_a', password: 'rerun-password-a' });
      assert.equal(login.status, 200);
      write([
        { username: 'rerun_a', email: 'rerun.a2@example.com', password: 'rerun-password-a2' },
        { username: 'rerun_b', status: 'disabled' },
      ]);
      assert.deepEqual(pick(await importFile(store, file)), [0, 0, 2, 0], 'without --update nothing changes');
      assert.deepEqual(pick(await importFile(store, file, '--update')), [0, 2, 0, 0]);
      const [a, b] = await snapshot();
      assert.equal(a.email, 'rerun.a2@example.com');
      assert.equal(b.status, 'disabled');
      const userinfo = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${login.body.access_token}` } });
      assert.equal(userinfo.status, 401, 'the new password ended the old session');
      assert.deepEqual(await loginEverywhere(server, 'rerun_a', 'rerun.a2@example.com', 'rerun-password-a2'), [200, 200, 200]);
    });

    it('export writes JSON Lines without hashes unless asked; export → import into an empty store reproduces every user, who can all log in', async () => {
      // Users of every kind: foreign hashes from Django (one rehashed by a login, the rest not) and
      // PHP, argon2id from a plain password, and external users with no password at all.
      const django = path.join(dir, 'django-users.csv');
      fs.writeFileSync(django, DJANGO.csv);
      assert.deepEqual(pick(await importFile(store, django)), [6, 0, 0, 0]);
      await assertMigrates(server, DJANGO.users.find((u) => u.username === 'Dj_Alice')!);
      const php = path.join(dir, 'php-users.jsonl');
      fs.writeFileSync(php, PHP.jsonl);
      assert.deepEqual(pick(await importFile(store, php)), [5, 0, 0, 0]);
      const local = path.join(dir, 'local.jsonl');
      const localRows = [
        { username: 'good_1', email: 'good1@example.com', password: 'plain-password-1' },
        { username: 'rerun_a', email: 'rerun.a2@example.com', password: 'rerun-password-a2' },
        ...Array.from({ length: 10 }, (_, i) => ({ username: `external_${i}`, email: `external.${i}@example.com`, status: 'active' })),
      ];
      fs.writeFileSync(local, localRows.map((row) => JSON.stringify(row)).join('\n') + '\n');
      assert.deepEqual(pick(await importFile(store, local)), [12, 0, 0, 0]);

      const plain = await cli(store, ['users', 'export']);
      assert.equal(plain.code, 0, plain.stderr);
      const rows = plain.stdout.trim().split('\n').map((line) => JSON.parse(line));
      assert.ok(rows.length > 20);
      assert.ok(rows.every((row) => !('password_hash' in row)));
      assert.deepEqual(Object.keys(rows[0]).sort(), ['created_at', 'email', 'id', 'status', 'username']);

      const file = path.join(dir, 'export.jsonl');
      const exported = await cli(store, ['users', 'export', '--with-hashes', '--output', file]);
      assert.equal(exported.code, 0, exported.stderr);
      assert.equal(JSON.parse(exported.stdout).exported, rows.length);
      assert.equal(fs.statSync(file).mode & 0o077, 0, 'the export holds hashes: owner-only');

      const empty = await freshStore(engine);
      const copy = await startServer(engine, {}, empty);
      try {
        const summary = await importFile(empty, file);
        assert.deepEqual(pick(summary), [rows.length, 0, 0, 0]);
        const again = await cli(empty, ['users', 'export', '--with-hashes']);
        assert.equal(again.stdout, fs.readFileSync(file, 'utf8'), 'the copy exports byte for byte what the original did');
        // A user who logged in above (now argon2id), users never logged in (still their foreign hash)
        // and users imported with a plain password.
        assert.deepEqual(await loginEverywhere(copy, 'dj_alice', 'dj.alice@example.com', 'Grüße ﬁx 42'), [200, 200, 200]);
        assert.deepEqual(await loginEverywhere(copy, 'good_1', 'good1@example.com', 'plain-password-1'), [200, 200, 200]);
        assert.deepEqual(await loginEverywhere(copy, 'rerun_a', 'rerun.a2@example.com', 'rerun-password-a2'), [200, 200, 200]);
        assert.deepEqual(await loginEverywhere(copy, 'php_user_3', 'php.user.3@example.com', 'php-secret-3-ü'), [200, 200, 200]);
      } finally {
        await copy.close();
        await empty.drop();
      }
    });
  });
}

function pick(summary: { imported: number; updated: number; skipped: number; rejected: number }) {
  return [summary.imported, summary.updated, summary.skipped, summary.rejected];
}
