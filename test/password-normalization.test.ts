// Passwords are NFKC-normalized before hashing and checking (NIST SP 800-63B), and hashes made
// before that (from the raw string) still verify, then are replaced by argon2id of the normalized form.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hash, Algorithm } from '@node-rs/argon2';
import { ENGINES, startServer, post, createUser, userWithStoredHash, ADMIN_TOKEN, type TestServer } from './helpers.ts';

// 'ﬁ' (U+FB01) and full-width digits: NFKC turns them into 'fi' and ASCII digits.
const RAW = 'ﬁne-pass-１２３';
const NFKC = 'fine-pass-123';
const CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;

async function logins(server: TestServer, username: string, email: string, password: string) {
  const wikimedia = await post(`${server.url}/v1/login`, { username, password });
  const roypi = await post(`${server.url}/auth/access_token/`, { username, password });
  const ziik = await post(`${server.url}/api/authenticate`, { username: email, password });
  return [wikimedia.status, roypi.status, ziik.status];
}

for (const engine of ENGINES) {
  describe(`password normalization on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(async () => server.close());

    const legacyUser = (username: string, passwordHash: string) => userWithStoredHash(server, { username, password_hash: passwordHash });

    it('a hash of the raw, non-NFKC password logs in with the raw input, then is rehashed so the NFKC spelling works too', async () => {
      const legacyHash = await hash(RAW, { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
      const user = await legacyUser('ligature', legacyHash);
      // Before any login, only the raw spelling matches the stored hash.
      assert.deepEqual(await logins(server, 'ligature', 'ligature@example.com', NFKC), [401, 400, 401]);

      const first = await post(`${server.url}/v1/login`, { username: 'ligature', password: RAW });
      assert.equal(first.status, 200);
      const after = (await server.core.store.userById(user.id))!;
      assert.notEqual(after.password_hash, legacyHash);
      assert.match(after.password_hash!, CURRENT);
      assert.equal(after.password_changed_at, user.password_changed_at, 'a rehash is not a password change');
      const events = await server.core.users.events({ id: user.id });
      assert.ok(events.some((e) => e.kind === 'password_rehashed'));

      assert.deepEqual(await logins(server, 'ligature', 'ligature@example.com', NFKC), [200, 200, 200]);
      assert.deepEqual(await logins(server, 'ligature', 'ligature@example.com', RAW), [200, 200, 200]);
      // The session from before the rehash is still alive: the password did not change.
      const info = await fetch(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${first.body.access_token}` } });
      assert.equal(info.status, 200);
    });

    it('a wrong password does not rehash, and the old hash stays', async () => {
      const legacyHash = await hash(RAW, { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
      const user = await legacyUser('stays', legacyHash);
      assert.deepEqual(await logins(server, 'stays', 'stays@example.com', 'ﬁne-pass-１２４'), [401, 400, 401]);
      assert.equal((await server.core.store.userById(user.id))!.password_hash, legacyHash);
    });

    it('a new user logs in with either of two NFKC-equivalent spellings, without a rehash', async () => {
      const created = await createUser(server, { username: 'fresh', email: 'fresh@example.com', password: RAW });
      const stored = (await server.core.store.userById(created.id))!.password_hash;
      assert.match(stored!, CURRENT);
      assert.deepEqual(await logins(server, 'fresh', 'fresh@example.com', NFKC), [200, 200, 200]);
      assert.deepEqual(await logins(server, 'fresh', 'fresh@example.com', RAW), [200, 200, 200]);
      assert.equal((await server.core.store.userById(created.id))!.password_hash, stored);
    });

    it('hashes at other argon2 parameters or variants verify and are brought to argon2id at ours', async () => {
      const weak = await hash(NFKC, { algorithm: Algorithm.Argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
      const argon2i = await hash(NFKC, { algorithm: Algorithm.Argon2i, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
      for (const [name, old] of [['weakparams', weak], ['argon2i', argon2i]]) {
        const user = await legacyUser(name, old);
        assert.equal((await post(`${server.url}/auth/access_token/`, { username: name, password: NFKC })).status, 200);
        assert.match((await server.core.store.userById(user.id))!.password_hash!, CURRENT);
        assert.equal((await post(`${server.url}/auth/access_token/`, { username: name, password: NFKC })).status, 200);
      }
    });

    it('the policy counts the normalized password', async () => {
      // 20 code points that NFKC expands to 360 ('ﷺ' is 18 characters): over the 256 limit.
      const reply = await post(
        `${server.url}/admin/users`,
        { username: 'expands', email: 'expands@example.com', password: 'ﷺ'.repeat(20) },
        { authorization: `Bearer ${ADMIN_TOKEN}` },
      );
      assert.equal(reply.status, 400);
      assert.match(reply.text, /at most 256/);
    });

    it('a rehash never overwrites a hash that changed after the check (a racing password change wins)', async () => {
      const user = await legacyUser('racer', await hash(RAW));
      const changed = await server.core.users.setPassword({ id: user.id }, 'changed-meanwhile');
      // The login verified the old hash; the change landed first; the late rehash is dropped.
      const afterRehash = await server.core.users.upgradeHash(user, RAW);
      assert.equal(afterRehash.password_hash, user.password_hash);
      assert.equal((await server.core.store.userById(user.id))!.password_hash, changed.password_hash);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'racer', password: RAW })).status, 401);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'racer', password: 'changed-meanwhile' })).status, 200);
    });
  });
}
