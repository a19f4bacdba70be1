// Users brought from Django, PHP/Laravel, Apache or any PHC-string tool log in with their old
// password, and on that first login their hash becomes argon2id at our parameters. The hashes were
// made by those tools themselves and are committed (test/foreign-hash-fixtures.ts says how).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseHash, verifyHash } from '../src/core/hash-formats.ts';
import { ENGINES, startServer, post, userWithStoredHash, type TestServer } from './helpers.ts';
import { EXPECTED_FORMATS, hashesByName, loadForeignHashes } from './foreign-hash-fixtures.ts';

const FIXTURES = loadForeignHashes();
// Non-ASCII, and with a ligature NFKC rewrites: the old systems hashed it as typed.
const PASSWORD = 'Grüße ﬁx 42';
const CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;
const HASHES = hashesByName(FIXTURES);

describe('foreign hash formats', () => {
  it('every tool made the format it was asked for', () => {
    assert.deepEqual(Object.keys(HASHES).sort(), Object.keys(EXPECTED_FORMATS).sort());
    for (const entry of FIXTURES.hashes) assert.equal(entry.password, PASSWORD, entry.name);
    assert.match(HASHES.php_bcrypt, /^\$2y\$/);
    assert.match(HASHES.htpasswd_bcrypt, /^\$2y\$/);
    assert.match(HASHES.bcrypt, /^bcrypt\$\$2b\$/);
    assert.match(HASHES.bcrypt_2a, /^\$2a\$/);
  });

  for (const [name, format] of Object.entries(EXPECTED_FORMATS)) {
    it(`${name} is recognised as ${format}, matches its password and nothing else`, async () => {
      const stored = HASHES[name];
      assert.equal(parseHash(stored)?.format, format);
      assert.equal(await verifyHash(stored, PASSWORD), true);
      assert.equal(await verifyHash(stored, 'Grüße fix 42'), false);
      assert.equal(await verifyHash(stored, ''), false);
      // One character inside the digest changed: a mismatch, not a crash. Not its last
      // characters, whose low bits base64 may not use (a change there can decode to the same bytes).
      const at = stored.length - 10;
      const swapped = stored[at] === 'A' ? 'B' : 'A';
      assert.equal(await verifyHash(stored.slice(0, at) + swapped + stored.slice(at + 1), PASSWORD), false);
    });
  }

  it('unknown formats and unbounded work factors are not recognised (so import refuses them)', () => {
    const refused = [
      'plaintext',
      '',
      'md5$salt$5f4dcc3b5aa765d61d8327deb882cf99',
      'sha1$salt$5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8',
      'unsalted_md5$5f4dcc3b5aa765d61d8327deb882cf99',
      '$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0',
      '$6$rounds=5000$salt$abc',
      '$2x$10$' + 'a'.repeat(53),
      '$2y$31$' + 'a'.repeat(53),
      '$2y$10$short',
      'pbkdf2_sha256$999999999$salt$' + 'A'.repeat(43) + '=',
      'pbkdf2_sha512$1000$salt$' + 'A'.repeat(86) + '==',
      '$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$' + 'A'.repeat(43),
      '$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$' + 'A'.repeat(43),
      'scrypt$salt$12345$8$1$' + 'A'.repeat(86) + '==',
      'x'.repeat(2000),
    ];
    for (const stored of refused) assert.equal(parseHash(stored), undefined, stored);
  });
});

for (const engine of ENGINES) {
  describe(`foreign hashes at login on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(async () => server.close());

    it('every format logs in through all three APIs with the old password and is rehashed to argon2id on the first login', async () => {
      for (const [name, stored] of Object.entries(HASHES)) {
        const username = `from_${name}`;
        const email = `${username}@example.com`;
        const user = await userWithStoredHash(server, { username, email, password_hash: stored });
        const wrong = await post(`${server.url}/v1/login`, { username, password: 'Grüße fix 43' });
        assert.equal(wrong.status, 401, name);
        assert.equal((await server.core.store.userById(user.id))!.password_hash, stored, `${name}: a failed login keeps the hash`);

        const first = await post(`${server.url}/v1/login`, { username, password: PASSWORD });
        assert.equal(first.status, 200, `${name}: ${first.text}`);
        const rehashed = (await server.core.store.userById(user.id))!.password_hash!;
        assert.match(rehashed, CURRENT, name);

        const roypi = await post(`${server.url}/auth/access_token/`, { username, password: PASSWORD });
        const ziik = await post(`${server.url}/api/authenticate`, { username: email, password: PASSWORD });
        // Normalized now: the NFKC spelling works too.
        const nfkc = await post(`${server.url}/api/authenticate`, { username: email, password: 'Grüße fix 42' });
        assert.deepEqual([roypi.status, ziik.status, nfkc.status], [200, 200, 200], name);
        assert.equal((await server.core.store.userById(user.id))!.password_hash, rehashed, `${name}: rehashed once`);
      }
    });

    it('a stored hash in an unknown format is a failed login, never an error', async () => {
      // The import refuses an unknown format; a store filled otherwise may still hold one.
      await userWithStoredHash(server, { username: 'weird', password_hash: 'md5$salt$5f4dcc3b5aa765d61d8327deb882cf99', asLeftByAnOlderRelease: true });
      assert.equal((await post(`${server.url}/v1/login`, { username: 'weird', password: 'password' })).status, 401);
      assert.equal((await post(`${server.url}/auth/access_token/`, { username: 'weird', password: 'password' })).status, 400);
    });
  });
}
