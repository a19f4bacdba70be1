// LATCHKEY_MIGRATE_FROM: a user not here yet (or imported without a password) is checked once
// against a live old service, in its own dialect; here the old service is a second Latchkey.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { loadConfig, ConfigError } from '../src/platform/config.ts';
import { ENGINES, startServer, freshStore, post, call, createUser, freePort, ADMIN_TOKEN, type TestServer } from './helpers.ts';
import { Migrator } from 'kysely';
import { connect } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations.ts';

const CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function loginEverywhere(server: TestServer, username: string, email: string, password: string) {
  const wikimedia = await post(`${server.url}/v1/login`, { username, password });
  const roypi = await post(`${server.url}/auth/access_token/`, { username, password });
  const ziik = await post(`${server.url}/api/authenticate`, { username: email, password });
  return [wikimedia.status, roypi.status, ziik.status];
}

/** Logins the old service saw for a user (successful ones are audited as `login`). */
async function upstreamLogins(old: TestServer, username: string) {
  return (await old.core.users.events({ username })).filter((e) => e.kind === 'login').length;
}

describe('LATCHKEY_MIGRATE_FROM configuration', () => {
  it('is <dialect>+<base URL>', () => {
    const from = loadConfig({ LATCHKEY_MIGRATE_FROM: 'roypi+https://old.example.com/' }).migrateFrom;
    assert.deepEqual(from, { dialect: 'roypi', url: 'https://old.example.com', timeoutMs: 5000, caseInsensitive: false });
    assert.equal(loadConfig({ LATCHKEY_MIGRATE_FROM: 'roypi+https://old.example.com', LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' }).migrateFrom?.caseInsensitive, true);
    assert.throws(() => loadConfig({ LATCHKEY_MIGRATE_FROM: 'roypi+https://old.example.com', LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'yes' }), ConfigError);
    assert.equal(loadConfig({ LATCHKEY_MIGRATE_FROM: 'ziik+http://10.0.0.2:8000', LATCHKEY_MIGRATE_TIMEOUT_MS: '800' }).migrateFrom?.timeoutMs, 800);
    for (const bad of ['https://old.example.com', 'cognito+https://x.example.com', 'roypi+ftp://x.example.com', 'roypi+not a url']) {
      assert.throws(() => loadConfig({ LATCHKEY_MIGRATE_FROM: bad }), ConfigError, bad);
    }
    assert.equal(loadConfig({}).migrateFrom, undefined);
  });
});

for (const engine of ENGINES) {
  describe(`lazy migration from a live old service on ${engine.name}`, () => {
    let old: TestServer;
    before(async () => {
      old = await startServer(engine);
    });
    after(async () => old.close());

    for (const dialect of ['wikimedia', 'roypi', 'ziik'] as const) {
      it(`${dialect}: the first login is checked at the old service, then the user lives here and the old service is never asked again`, async () => {
        const username = `mig_${dialect}`;
        const email = `mig.${dialect}@example.com`;
        await createUser(old, { username, email, password: 'old-service-pass' });
        const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `${dialect}+${old.url}` });
        try {
          // Ziik's old service is asked by email, the others by username: the client logs in the same way.
          const first =
            dialect === 'ziik'
              ? await post(`${server.url}/api/authenticate`, { username: email, password: 'old-service-pass' })
              : await post(`${server.url}${dialect === 'wikimedia' ? '/v1/login' : '/auth/access_token/'}`, { username, password: 'old-service-pass' });
          assert.equal(first.status, 200, first.text);
          assert.equal(await upstreamLogins(old, username), 1);
          const token = dialect === 'ziik' ? first.body[0].jwt : first.body.access_token;
          const info = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
          assert.equal(info.status, 200, 'the tokens are the new service own');
          assert.deepEqual([info.body.username, info.body.email], [username, email]);

          const local = (await server.core.store.userByUsername(username))!;
          assert.match(local.password_hash!, CURRENT);
          assert.equal(local.managed_by, 'local');
          assert.ok((await server.core.users.events({ username })).some((e) => e.kind === 'user_migrated'));

          // The old service changes its mind; it is not asked again.
          await call(`${old.url}/admin/users/${username}/password`, { json: { password: 'changed-at-old' }, headers: admin });
          assert.deepEqual(await loginEverywhere(server, username, email, 'old-service-pass'), [200, 200, 200]);
          assert.deepEqual(await loginEverywhere(server, username, email, 'changed-at-old'), [401, 400, 401]);
          assert.equal(await upstreamLogins(old, username), 1);
        } finally {
          await server.close();
        }
      });
    }

    it('the old service is no password oracle: guesses for a user not here yet spend the lockout before they are forwarded', async () => {
      // The old service trusts Latchkey (loopback here) as its proxy, as the README asks.
      const trusting = await startServer(engine, { LATCHKEY_TRUST_PROXY: 'loopback' });
      await createUser(trusting, { username: 'oracle_victim', email: 'oracle.victim@example.com', password: 'victim-password' });
      const failedAtOld = async () => (await trusting.core.users.events({ username: 'oracle_victim' })).filter((e) => e.kind === 'login_failed').length;
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${trusting.url}`, LATCHKEY_TRUST_PROXY: '1' });
      try {
        const guess = (password: string, ip: string) => post(`${server.url}/v1/login`, { username: 'oracle_victim', password }, { 'x-forwarded-for': ip });
        const statuses = [];
        for (let i = 0; i < 8; i++) statuses.push((await guess(`guess-${i}`, `2001:db8:66:1::${i + 1}`)).status);
        assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429], 'one /64 is locked out of the account after 5 guesses');
        assert.equal(await failedAtOld(), 5, 'only the guesses within the limits reached the old service');
        // Even the right password from the locked-out /64 is not forwarded; the victim elsewhere logs in.
        assert.equal((await guess('victim-password', '2001:db8:66:1::99')).status, 429);
        assert.equal(await upstreamLogins(trusting, 'oracle_victim'), 0);
        // The old service locked out the attacker's address, not Latchkey's: the victim migrates.
        assert.equal((await guess('victim-password', '198.51.100.44')).status, 200);
        assert.equal(await upstreamLogins(trusting, 'oracle_victim'), 1);
        const failures = (await trusting.core.users.events({ username: 'oracle_victim' })).filter((e) => e.kind === 'login_failed');
        assert.ok(failures.every((e) => e.ip?.startsWith('2001:db8:66:1:')), 'the old service saw the client\'s address');
      } finally {
        await server.close();
        await trusting.close();
      }
    });

    it('a wrong password, or an unknown user, is an ordinary failed login that creates nobody', async () => {
      await createUser(old, { username: 'wrongpw', email: 'wrongpw@example.com', password: 'right-password' });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        const wrong = await post(`${server.url}/v1/login`, { username: 'wrongpw', password: 'wrong-password' });
        const unknown = await post(`${server.url}/v1/login`, { username: 'nobody-anywhere', password: 'wrong-password' });
        assert.deepEqual([wrong.status, wrong.body], [unknown.status, unknown.body]);
        assert.equal(wrong.status, 401);
        assert.equal(await server.core.store.userByUsername('wrongpw'), undefined);
        assert.equal(await server.core.store.userByUsername('nobody-anywhere'), undefined);
        const roypi = await post(`${server.url}/auth/access_token/`, { username: 'wrongpw', password: 'wrong-password' });
        assert.equal(roypi.status, 400);
        // Then the right password migrates them.
        assert.equal((await post(`${server.url}/v1/login`, { username: 'wrongpw', password: 'right-password' })).status, 200);
      } finally {
        await server.close();
      }
    });

    it('an old service that is down, hangs, fails or answers nonsense is a failed login, never a 5xx, and its answer never reaches the client', async () => {
      const hanging = net.createServer(() => {}); // accepts, never answers
      await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
      const answers: Record<string, [number, string]> = {
        '/broken/v1/login': [500, '{"secret":"UPSTREAM-LEAK"}'],
        '/nonsense/v1/login': [200, 'UPSTREAM-LEAK not json'],
        '/redirect/v1/login': [302, ''],
        '/challenge/v1/login': [200, '{"challenge_name":"NEW_PASSWORD_REQUIRED","session":"UPSTREAM-LEAK"}'],
      };
      const fake = http.createServer((request, response) => {
        const [status, body] = answers[request.url!] ?? [404, ''];
        if (status === 302) response.setHeader('location', `${old.url}/v1/login`);
        response.writeHead(status, { 'content-type': 'application/json' }).end(body);
      });
      await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
      const fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
      await createUser(old, { username: 'flaky', email: 'flaky@example.com', password: 'flaky-password' });
      const upstreams = [
        `http://127.0.0.1:${await freePort()}`, // nothing listens
        `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`,
        ...Object.keys(answers).map((path) => fakeUrl + path.replace('/v1/login', '')),
      ];
      try {
        for (const upstream of upstreams) {
          const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${upstream}`, LATCHKEY_MIGRATE_TIMEOUT_MS: '300' });
          try {
            const reply = await post(`${server.url}/v1/login`, { username: 'flaky', password: 'flaky-password' });
            assert.equal(reply.status, 401, upstream);
            assert.deepEqual(reply.body, { status: 401, message: 'Incorrect username or password.' }, upstream);
            assert.doesNotMatch(reply.text, /UPSTREAM-LEAK/);
            assert.equal(await server.core.store.userByUsername('flaky'), undefined);
          } finally {
            await server.close();
          }
        }
      } finally {
        hanging.close();
        fake.close();
      }
    });

    it('a user imported without a hash is migrated at their first login through any API; users with a hash here are never forwarded', async () => {
      await createUser(old, { username: 'imported_nohash', email: 'imported.nohash@example.com', password: 'imported-old-pass' });
      await createUser(old, { username: 'haslocal', email: 'haslocal@example.com', password: 'old-service-only' });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        const imported = await call(`${server.url}/admin/users/import`, {
          body: '{"username":"imported_nohash","email":"imported.nohash@example.com"}\n',
          headers: { ...admin, 'content-type': 'application/x-ndjson' },
        });
        assert.equal(imported.body.imported, 1);
        await createUser(server, { username: 'haslocal', email: 'haslocal@example.com', password: 'local-password' });

        // Through Ziik (by email): the old Wikimedia-style service is asked by the username we hold.
        const ziik = await post(`${server.url}/api/authenticate`, { username: 'imported.nohash@example.com', password: 'imported-old-pass' });
        assert.equal(ziik.status, 200, ziik.text);
        const local = (await server.core.store.userByUsername('imported_nohash'))!;
        assert.match(local.password_hash!, CURRENT);
        assert.equal(local.managed_by, 'local');
        assert.deepEqual(await loginEverywhere(server, 'imported_nohash', 'imported.nohash@example.com', 'imported-old-pass'), [200, 200, 200]);

        assert.deepEqual(await loginEverywhere(server, 'haslocal', 'haslocal@example.com', 'old-service-only'), [401, 400, 401]);
        assert.equal(await upstreamLogins(old, 'haslocal'), 0);
        assert.deepEqual(await loginEverywhere(server, 'haslocal', 'haslocal@example.com', 'local-password'), [200, 200, 200]);
      } finally {
        await server.close();
      }
    });
  });
}

/**
 * An old service that compares names exactly (case-sensitive, as many do): `Alice` and `alice`
 * are two of its accounts. It records every identifier it was asked about.
 */
async function caseSensitiveOldService(accounts: Record<string, { password: string; email?: string }>, delayMs = 0) {
  const asked: string[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', async () => {
      const { username, password } = JSON.parse(body || '{}');
      asked.push(username);
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const account = Object.hasOwn(accounts, username) ? accounts[username] : undefined;
      if (!account || account.password !== password) {
        response.writeHead(401, { 'content-type': 'application/json' }).end('{"status":401,"message":"Incorrect username or password."}');
        return;
      }
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const token = `${part({ alg: 'none' })}.${part({ username, email: account.email })}.x`;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, id_token: token, refresh_token: 'r', expires_in: 86400 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function importRows(server: TestServer, rows: object[]) {
  const reply = await call(`${server.url}/admin/users/import`, {
    body: rows.map((row) => JSON.stringify(row)).join('\n') + '\n',
    headers: { ...admin, 'content-type': 'application/x-ndjson' },
  });
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
}

for (const engine of ENGINES) {
  describe(`lazy migration only for users meant to migrate, on ${engine.name}`, () => {
    it('the old service is asked about the identifier as it was imported: its account "alice" cannot take over the imported "Alice"', async () => {
      const old = await caseSensitiveOldService({
        Alice: { password: 'victim-old-pass', email: 'alice@example.com' },
        alice: { password: 'attacker-pass', email: 'attacker@example.com' },
      });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        assert.equal((await importRows(server, [{ username: 'Alice', email: 'alice@example.com' }])).imported, 1);
        // Four tries, under the lockout (five), so the victim's own login below is not refused by it.
        assert.equal((await post(`${server.url}/v1/login`, { username: 'alice', password: 'attacker-pass' })).status, 401);
        assert.equal((await post(`${server.url}/v1/login`, { username: 'ALICE', password: 'attacker-pass' })).status, 401);
        assert.equal((await post(`${server.url}/auth/access_token/`, { username: 'alice', password: 'attacker-pass' })).status, 400);
        assert.equal((await post(`${server.url}/api/authenticate`, { username: 'alice@example.com', password: 'attacker-pass' })).status, 401);
        assert.ok(old.asked.every((name) => name === 'Alice'), `asked: ${old.asked.join(', ')}`);
        assert.equal((await server.core.store.userByUsername('alice'))!.password_hash, null, 'nothing was migrated');
        // The victim, however they type their name here, migrates with their own password.
        const victim = await post(`${server.url}/v1/login`, { username: 'alice', password: 'victim-old-pass' });
        assert.equal(victim.status, 200, victim.text);
      } finally {
        await server.close();
        await old.close();
      }
    });

    it('an external (SSO) user is never migrated, whatever the old service says about that name', async () => {
      const old = await caseSensitiveOldService({ director: { password: 'old-director-pass' }, Director: { password: 'old-director-pass' } });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        await createUser(server, { username: 'director', email: 'director@example.com', external: true });
        for (const typed of ['director', 'Director']) {
          assert.equal((await post(`${server.url}/v1/login`, { username: typed, password: 'old-director-pass' })).status, 401);
        }
        assert.deepEqual(old.asked, [], 'the old service was never asked');
        const sso = (await server.core.store.userByUsername('director'))!;
        assert.deepEqual([sso.password_hash, sso.managed_by], [null, 'external']);
      } finally {
        await server.close();
        await old.close();
      }
    });

    it('a deleted user does not come back at their next login, whether they were created at first login or imported', async () => {
      const old = await caseSensitiveOldService({ leaver: { password: 'leaver-pass' }, importedleaver: { password: 'leaver-pass' } });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        assert.equal((await post(`${server.url}/v1/login`, { username: 'leaver', password: 'leaver-pass' })).status, 200);
        const created = (await server.core.store.userByUsername('leaver'))!;
        assert.equal((await server.core.store.migrationOf(created.id))?.state, 'migrated', 'a user created at first login is marked as migrated');
        await importRows(server, [{ username: 'importedleaver' }]);
        for (const name of ['leaver', 'importedleaver']) {
          assert.equal((await call(`${server.url}/admin/users/${name}`, { method: 'DELETE', headers: admin })).status, 204);
          const again = await post(`${server.url}/v1/login`, { username: name, password: 'leaver-pass' });
          assert.equal(again.status, 401, name);
          assert.equal(await server.core.store.userByUsername(name), undefined, `${name} stays deleted`);
        }
        assert.deepEqual(old.asked, ['leaver'], 'the old service is not asked about a deleted user');
      } finally {
        await server.close();
        await old.close();
      }
    });

    it("an email claim already taken here is dropped, not a failure: a squatter's address does not block the victim's migration", async () => {
      const old = await caseSensitiveOldService({ victim: { password: 'victim-pass', email: 'victim@example.com' } });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        await createUser(server, { username: 'squatter', email: 'victim@example.com', password: 'squatter-password' });
        const login = await post(`${server.url}/v1/login`, { username: 'victim', password: 'victim-pass' });
        assert.equal(login.status, 200, login.text);
        const victim = (await server.core.store.userByUsername('victim'))!;
        assert.equal(victim.email, null);
        assert.equal((await server.core.store.userByEmail('victim@example.com'))!.username, 'squatter');
      } finally {
        await server.close();
        await old.close();
      }
    });

    it('concurrent first logins of one user all succeed, imported or created at first login', async () => {
      const old = await caseSensitiveOldService({ RaceImported: { password: 'race-pass' }, racecreated: { password: 'race-pass' } }, 150);
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` });
      try {
        await importRows(server, [{ username: 'RaceImported' }]);
        for (const name of ['raceimported', 'racecreated']) {
          const replies = await Promise.all([1, 2, 3].map(() => post(`${server.url}/v1/login`, { username: name, password: 'race-pass' })));
          assert.deepEqual(replies.map((r) => r.status), [200, 200, 200], name);
        }
      } finally {
        await server.close();
        await old.close();
      }
    });

    it('users imported before the old service identifier was kept are not migrated, unless the old service is declared case-insensitive', async () => {
      const old = await caseSensitiveOldService({ legacy: { password: 'legacy-pass' } });
      const shared = await freshStore(engine);
      try {
        // The store as an import before this change left it: a user without a password, with only
        // the lowercased name (migration 0006 makes it awaiting; 0007 keeps that name as stored).
        const connection = connect({ databaseUrl: shared.env.DATABASE_URL, dataDir: shared.env.LATCHKEY_DATA_DIR });
        try {
          const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
          const { error } = await migrator.migrateTo('0005_sweep_indexes');
          if (error) throw error;
          const now = Date.now();
          await connection.db
            .insertInto('users')
            .values({ username: 'legacy', email: null, password_hash: null, status: 'active', managed_by: 'external', created_at: now, updated_at: now, password_changed_at: null } as any)
            .execute();
        } finally {
          await connection.close();
        }
        const first = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}` }, shared);
        try {
          assert.equal((await post(`${first.url}/v1/login`, { username: 'legacy', password: 'legacy-pass' })).status, 401);
          assert.deepEqual(old.asked, [], 'the old service is not asked by a name it may not know');
        } finally {
          await first.close();
        }
        const declared = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}`, LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' }, shared);
        try {
          assert.equal((await post(`${declared.url}/v1/login`, { username: 'legacy', password: 'legacy-pass' })).status, 200);
          assert.deepEqual(old.asked, ['legacy']);
        } finally {
          await declared.close();
        }
      } finally {
        await shared.drop();
        await old.close();
      }
    });
  });
}
