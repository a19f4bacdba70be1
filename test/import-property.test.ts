// Property (issue 12, "Done when"): generated import rows and generated old-service answers thrown
// at the real server never get a 5xx, never crash it, and never merge two accounts. Rows go in as
// JSON Lines through POST /admin/users/import (ids written as raw JSON text, so a fractional id
// near 2^53 reaches the server as written) and as CSV through the import the CLI runs, with and
// without update; their ids, Unicode names and emails, legacy ids and hash strings are generated.
// Logins go to a server migrating from a fake old service (a real HTTP server in this test) that
// answers with generated statuses, tokens naming anyone, garbled, huge or endlessly nested JSON,
// slow answers and dropped connections. After each batch: every id distinct and exact, every
// username and email a distinct, stable identity key, every legacy id distinct, and a login as a
// name yields only the `sub` of the account holding that name's key. Both stores.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { ENGINES, ADMIN_TOKEN, startServer, call, post, createUser, decodeJwt, type TestServer } from './helpers.ts';
import { identityKey } from '../src/domain/identity-key.ts';
import { csvRows, TransferFormatError } from '../src/transfer/records.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const RUNS = 18;
const MIGRATE_TIMEOUT_MS = 400;

// ---- Generated rows -----------------------------------------------------------------------

/** Names that collide, under the key or by look, with accounts that exist. */
const BASE_NAMES = ['alice', 'bob', 'carol', 'director', 'jǰ', 'strasse', 'admin', 'x1'];
const fullwidth = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0));
/** Spellings that land on the same identity key (or a neighbouring one). */
const SAME_KEY: ((s: string) => string)[] = [
  (s) => s,
  (s) => s.toUpperCase(),
  (s) => s[0].toUpperCase() + s.slice(1),
  fullwidth,
  (s) => s.normalize('NFD'),
  (s) => s.replace('j', 'J\u030C'), // a letter and a combining mark whose lowercase composes
  (s) => s.replace('ss', 'ß').replace('strasse', 'STRAẞE'),
  (s) => s.replace('i', '\u0130'), // Turkish dotted capital I
  (s) => s.replace('f', 'ﬁ'),
];
/** Spellings a name may not be made of. */
const REFUSED: ((s: string) => string)[] = [
  (s) => s + '\u0301', // a trailing combining mark
  (s) => s.replace('a', '\u0430'), // Cyrillic а: a look-alike script mix
  (s) => s.replace('o', '\u03BF'), // Greek ο
  (s) => s.slice(0, 1) + '\u200B' + s.slice(1), // zero width space
  (s) => '\u202E' + s, // right-to-left override
  (s) => s + '\uD800', // a lone surrogate
  (s) => s + '\u0000',
  (s) => s.repeat(40), // overlong
];
const plainName = fc.stringMatching(/^[a-z][a-z0-9._-]{0,8}$/);
const hostileName = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...BASE_NAMES), fc.constantFrom(...REFUSED)).map(([n, t]) => t(n)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }) },
);
const name = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...BASE_NAMES), fc.constantFrom(...SAME_KEY)).map(([n, t]) => t(n)) },
  { weight: 4, arbitrary: plainName },
  { weight: 2, arbitrary: hostileName },
);
const email = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.oneof(plainName, fc.constantFrom(...BASE_NAMES)), fc.constantFrom(...SAME_KEY)).map(([local, t]) => `${t(local)}@${t('example.com')}`) },
  { weight: 1, arbitrary: fc.tuple(name, fc.constantFrom('example.com', 'exa\u200Bmple.com', 'ex\u0430mple.com')).map(([local, domain]) => `${local}@${domain}`) },
  { weight: 1, arbitrary: fc.constantFrom('not-an-email', '@', 'a@b', '') },
);
/** An id as raw JSON text: numbers as written (fractions, exponents, past 2^53), or strings. */
const id = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 200 }).map((n) => (n % 2 ? String(n) : `"${n}"`)) },
  // Whole after float rounding, and so accepted if read as a float.
  { weight: 2, arbitrary: fc.constantFrom('7.0', '5e0', '1.0000000000000001', '9007199254740990.5', '9007199254740989.5', '4.000000000000000001e0') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '0', '-1', '-0', '1.5', '1e21', '9007199254740991.5', '9007199254740992', '9007199254740993', '18446744073709551615',
      '"9007199254740992"', '"0012"', '"abc"', '"12 "', '""', 'null', 'true', '[1]', '{"n":1}', `"${'9'.repeat(40)}"`, '9'.repeat(400),
    ),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String) },
  // (2^53 - 1 itself, after which no account can be added, is test/id-bounds.test.ts's.)
);
const PASSWORD = 'generated-pass-1';
let CHEAP_BCRYPT = '';
/** Hash strings: the real one a row's password matches, and malformed or absurdly costly ones. */
const hashString = fc.oneof(
  { weight: 3, arbitrary: fc.constant(() => CHEAP_BCRYPT) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      () => '$2b$31$' + 'a'.repeat(53),
      () => '$2b$04$short',
      () => '$2y$99$' + 'b'.repeat(53),
      () => 'pbkdf2_sha256$4294967296$salt$' + 'A'.repeat(44),
      () => 'pbkdf2_sha1$99999999999999999999$salt$' + 'A'.repeat(28),
      () => 'pbkdf2_sha256$-1$salt$AAAA',
      () => 'pbkdf2_sha512$1e9$salt$AAAA',
      () => '$scrypt$ln=63,r=99,p=99$c2FsdA$' + 'A'.repeat(43),
      () => 'scrypt$salt$1048576$64$64$' + 'A'.repeat(88),
      () => '$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdHNhbHQ$' + 'A'.repeat(43),
      () => '$argon2id$v=19$m=19456,t=2,p=1$$',
      () => '$argon2d$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$' + 'A'.repeat(43),
      () => 'md5$salt$hash',
      () => '$1$salt$hash',
      () => '\u0000$2b$10$' + 'a'.repeat(53),
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => () => s) },
);
const legacyId = fc.oneof(
  { weight: 6, arbitrary: fc.oneof(fc.integer({ min: 1, max: 20 }).map((n) => `L-${n}`), fc.constant('18446744073709551615')) },
  { weight: 1, arbitrary: fc.constantFrom('has space', '', 'ｗｉｄｅ', '9'.repeat(65), 'tab\there') },
);
/** Mostly what a real file holds, sometimes not. */
const mostly = <T>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: hostile });

interface Row {
  /** Field name to its raw JSON text. */
  json: Record<string, string>;
  /** The password a login may use, when the row sets one. */
  password?: string;
  username: string;
}

const row: fc.Arbitrary<Row> = fc
  .record(
    {
      username: name,
      email,
      id,
      secret: fc.oneof(fc.constant({ password: PASSWORD }), hashString.map((h) => ({ hash: h })), fc.constant({})),
      status: mostly(fc.constantFrom('active', 'disabled', 'force_change_password', ''), fc.constantFrom('bogus', 'ACTIVE')),
      legacy_id: legacyId,
      created_at: mostly(fc.constant('2020-01-02T03:04:05Z'), fc.constantFrom('yesterday', '9999-99-99', '2020-02-30T00:00:00Z')),
    },
    { requiredKeys: ['username', 'secret'] },
  )
  .map((r) => {
    const json: Record<string, string> = { username: JSON.stringify(r.username) };
    if (r.email !== undefined) json.email = JSON.stringify(r.email);
    if (r.id !== undefined) json.id = r.id;
    if (r.status !== undefined) json.status = JSON.stringify(r.status);
    if (r.legacy_id !== undefined) json.legacy_id = JSON.stringify(r.legacy_id);
    if (r.created_at !== undefined) json.created_at = JSON.stringify(r.created_at);
    let password: string | undefined;
    if ('password' in r.secret) {
      json.password = JSON.stringify(r.secret.password);
      password = r.secret.password;
    } else if ('hash' in r.secret) {
      const hash = r.secret.hash();
      json.password_hash = JSON.stringify(hash);
      if (hash === CHEAP_BCRYPT) password = PASSWORD;
    }
    return { json, password, username: r.username };
  });

const jsonLine = (r: Row) => `{${Object.entries(r.json).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;

/** The same rows as CSV: every field a string (an id as the text it was written as, unquoted). */
function csv(rows: Row[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r.json)))];
  const cell = (raw: string | undefined) => {
    if (raw === undefined) return '';
    let text: string;
    try {
      const value = JSON.parse(raw);
      text = typeof value === 'string' ? value : raw;
    } catch {
      text = raw;
    }
    return `"${text.replace(/"/g, '""')}"`;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r.json[c])).join(','))].join('\n') + '\n';
}

// ---- The fake old service -----------------------------------------------------------------

interface Answer {
  status: number;
  body: 'token-as-asked' | 'token-naming' | 'garbled' | 'huge' | 'nested' | 'not-utf8' | 'empty' | 'wrong-types';
  /** Whom a `token-naming` answer confirms. */
  names: string;
  delayMs: number;
  /** Drop the connection instead of answering. */
  drop: boolean;
}

const anyAnswer: fc.Arbitrary<Answer> = fc.record({
  status: fc.constantFrom(200, 200, 200, 201, 204, 302, 400, 401, 403, 429, 500, 503),
  body: fc.constantFrom('token-as-asked', 'token-as-asked', 'token-naming', 'garbled', 'huge', 'nested', 'not-utf8', 'empty', 'wrong-types'),
  names: fc.oneof(fc.constantFrom('alice', 'Alice', 'Bob', 'bob', 'director', 'victim', 'ａｌｉｃｅ'), name),
  delayMs: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 150 }) }, { weight: 1, arbitrary: fc.constant(MIGRATE_TIMEOUT_MS + 300) }),
  drop: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});
/** A yes (for the name asked, or naming someone else) often enough that users do migrate. */
const answer: fc.Arbitrary<Answer> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ status: fc.constant(200), body: fc.constantFrom('token-as-asked', 'token-naming'), names: anyAnswer.map((a) => a.names), delayMs: fc.constant(0), drop: fc.constant(false) }) },
  { weight: 3, arbitrary: anyAnswer },
);

const jwt = (claims: unknown) =>
  [{ alg: 'HS256', typ: 'JWT' }, claims].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.') + '.c2ln';

async function startOldService() {
  let next: Answer | undefined;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const plan = next ?? { status: 401, body: 'empty', names: '', delayMs: 0, drop: false };
      let asked = '';
      try {
        asked = JSON.parse(body).username;
      } catch {
        // asked stays empty
      }
      setTimeout(() => {
        if (plan.drop) return request.socket.destroy();
        const token = (username: unknown) => jwt({ username, email: `${username}@example.com`, 'cognito:username': username });
        const bodies: Record<Answer['body'], () => string | Buffer> = {
          'token-as-asked': () => JSON.stringify({ access_token: token(asked), id_token: token(asked) }),
          'token-naming': () => JSON.stringify({ access_token: token(plan.names), id_token: token(plan.names) }),
          garbled: () => `{"access_token": "${token(asked)}", "id_token": "${token(asked).slice(0, 17)}`,
          huge: () => JSON.stringify({ padding: 'x'.repeat(200_000), access_token: token(asked), id_token: token(asked) }),
          nested: () => '['.repeat(200_000) + ']'.repeat(200_000),
          'not-utf8': () => Buffer.from([0x7b, 0xff, 0xfe, 0x22, 0x7d]),
          empty: () => '',
          'wrong-types': () => JSON.stringify({ access_token: 42, id_token: [token(asked)], username: { $ne: null } }),
        };
        response.writeHead(plan.status, { 'content-type': 'application/json' });
        response.end(plan.status === 204 ? undefined : bodies[plan.body]());
      }, plan.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answerNext(plan: Answer) {
      next = plan;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---- The invariants ------------------------------------------------------------------------

interface Listed {
  id: number;
  username: string;
  email: string | null;
  legacy_id: string | null;
}

async function everyUser(server: TestServer): Promise<Listed[]> {
  const users: Listed[] = [];
  for (let after = 0; ; ) {
    const page = await call(`${server.url}/admin/users?limit=1000&after=${after}`, { headers: admin });
    assert.equal(page.status, 200, page.text);
    users.push(...page.body.users);
    if (page.body.users.length < 1000) return users;
    after = page.body.next_after;
  }
}

/** No two accounts share an id, a name's key, an email's key or a legacy id; every id is exact. */
async function assertNoMerge(server: TestServer, what: string) {
  const users = await everyUser(server);
  const distinct = (values: unknown[], field: string) => assert.equal(new Set(values).size, values.length, `${field} shared by two accounts after ${what}`);
  for (const user of users) {
    assert.ok(Number.isSafeInteger(user.id) && user.id >= 1, `id ${user.id} after ${what}`);
    assert.equal(identityKey(user.username), user.username, `username ${JSON.stringify(user.username)} stored other than as its key after ${what}`);
    if (user.email !== null) assert.equal(identityKey(user.email), user.email, `email ${JSON.stringify(user.email)} stored other than as its key after ${what}`);
  }
  distinct(users.map((u) => u.id), 'an id');
  distinct(users.map((u) => identityKey(u.username)), 'a username key');
  distinct(users.flatMap((u) => (u.email === null ? [] : [identityKey(u.email)])), 'an email key');
  distinct(users.flatMap((u) => (u.legacy_id === null ? [] : [u.legacy_id])), 'a legacy id');
}

/** A login as `username`: never a 5xx, and if it succeeds, the `sub` is the account holding that name's key. */
async function assertLoginIsItsOwn(server: TestServer, username: string, password: string, what: string) {
  const login = await post(`${server.url}/v1/login`, { username, password });
  assert.ok(login.status < 500, `${login.status} for a login as ${JSON.stringify(username)} after ${what}: ${login.text}`);
  if (login.status !== 200 || !login.body?.access_token) return;
  const { sub, username: claimed } = decodeJwt(login.body.access_token);
  const holder = await call(`${server.url}/admin/user-ids/${sub}`, { headers: admin });
  assert.equal(holder.status, 200, `sub ${sub}: ${holder.text}`);
  assert.equal(holder.body.username, identityKey(username), `a login as ${JSON.stringify(username)} opened a session as ${JSON.stringify(holder.body.username)} after ${what}`);
  assert.equal(claimed, holder.body.username, `the token's username is its sub's after ${what}`);
}

// ---- The properties ------------------------------------------------------------------------

for (const engine of ENGINES) {
  describe(`generated import rows and old-service answers on ${engine.name}`, () => {
    let server: TestServer;
    let old: Awaited<ReturnType<typeof startOldService>>;
    before(async () => {
      CHEAP_BCRYPT ||= await bcryptHash(PASSWORD, 4);
      old = await startOldService();
      server = await startServer(engine, {
        LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}`,
        LATCHKEY_MIGRATE_TIMEOUT_MS: String(MIGRATE_TIMEOUT_MS),
        LATCHKEY_IP_RATE_LIMIT: '1000000',
        LATCHKEY_LOCKOUT_THRESHOLD: '1000000',
        LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: '1000000',
      });
      await createUser(server, { username: 'alice', email: 'alice@example.com', password: 'alice-password-1' });
      await createUser(server, { username: 'director', email: 'director@example.com', external: true });
      const awaiting = await call(`${server.url}/admin/users/import`, {
        body: '{"username": "Bob", "email": "Bob@Example.com"}\n{"username": "carol"}\n',
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      assert.equal(awaiting.body.imported, 2, awaiting.text);
    });
    after(async () => {
      await server.close();
      await old.close();
    });

    it('import rows (JSON Lines through the admin API, CSV through the CLI\'s import), with and without update: no 5xx, no merged accounts', async () => {
      let batch = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.constantFrom('jsonl', 'csv'), async (rows, update, format) => {
          const what = `import batch ${++batch} (${format}${update ? ', update' : ''}): ${rows.map(jsonLine).join(' | ').slice(0, 1500)}`;
          // Rows not rejected, by index (a CSV row's line is one past its JSON Lines line: the header).
          let accepted: number[] = [];
          if (format === 'jsonl') {
            const reply = await call(`${server.url}/admin/users/import${update ? '?update=true' : ''}`, {
              body: rows.map(jsonLine).join('\n'),
              headers: { ...admin, 'content-type': 'application/x-ndjson' },
            });
            assert.equal(reply.status, 200, `${what}: ${reply.text}`);
            assert.equal(reply.body.imported + reply.body.updated + reply.body.skipped + reply.body.rejected, rows.length, `${what}: ${reply.text}`);
            const rejected = new Set(reply.body.rejects.map((r: { line: number }) => r.line - 1));
            accepted = rows.map((_, i) => i).filter((i) => !rejected.has(i));
          } else {
            const rejected = new Set<number>();
            try {
              const counts = await server.core.transfer.importUsers(csvRows(Readable.from([csv(rows)])), { update, onReject: (r) => rejected.add(r.line - 2) });
              assert.equal(counts.imported + counts.updated + counts.skipped + counts.rejected, rows.length, what);
              // A quoted line break makes a record span lines, and its line number no longer its index.
              const spansLines = rows.some((r) => /\\[nr]|[\n\r\u2028\u2029]/.test(Object.values(r.json).join('')));
              if (!spansLines) accepted = rows.map((_, i) => i).filter((i) => !rejected.has(i));
            } catch (error) {
              // A file the reader refuses whole (say a record past its length) is a refusal, not a fault.
              if (!(error instanceof TransferFormatError)) throw error;
            }
          }
          await assertNoMerge(server, what);
          // A row that went in (or named its account) with an id did so with exactly the id written.
          for (const i of accepted) {
            const written = rows[i].json.id;
            if (written === undefined || written === 'null' || written === '""') continue;
            // As the server read it: UTF-8 on the wire makes a lone surrogate U+FFFD.
            const account = await call(`${server.url}/admin/users/${encodeURIComponent(Buffer.from(rows[i].username).toString())}`, { headers: admin });
            assert.equal(account.status, 200, `row ${i + 1} was not rejected, yet its account is not found: ${what}: ${account.text}`);
            assert.equal(String(account.body.id), written.replace(/^"|"$/g, ''), `row ${i + 1}'s id became ${account.body.id}: ${what}`);
          }
          for (const r of rows) if (r.password) await assertLoginIsItsOwn(server, r.username, r.password, what);
          // Those who exist from the start are still themselves.
          await assertLoginIsItsOwn(server, 'alice', 'alice-password-1', what);
        }),
        { numRuns: RUNS },
      );
    });

    it('logins migrated from an old service answering anything: no 5xx, no login as another, no merged accounts', async () => {
      const names = fc.oneof(fc.constantFrom('Bob', 'bob', 'BOB', 'ｂｏｂ', 'carol', 'alice', 'director', 'victim', 'newcomer', 'Newcomer'), name);
      let login = 0;
      await fc.assert(
        fc.asyncProperty(names, fc.constantFrom('their-old-password', 'alice-password-1'), answer, async (username, password, plan) => {
          const what = `migrating login ${++login} as ${JSON.stringify(username)} answered ${JSON.stringify(plan)}`;
          old.answerNext(plan);
          await assertLoginIsItsOwn(server, username, password, what);
          await assertNoMerge(server, what);
        }),
        { numRuns: RUNS * 2 },
      );
      // The server still answers at once.
      const health = await call(`${server.url}/health`);
      assert.equal(health.status, 200);
    });
  });
}
