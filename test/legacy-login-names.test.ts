// Users imported before the identifier as the old service knows it was kept (issue 12 item 3),
// with the old service declared case-insensitive: asked about by the name as stored before the
// identity key (migration 0007 keeps it), only for a login typed in a form that lowercasing alone
// makes that name; in stores that 0007 rekeyed before it kept those names, migration 0010 takes a
// name as it is now only where the rekey cannot have changed it, and the others wait.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Migrator, sql } from 'kysely';
import { connect } from '../src/store/db.ts';
import { migrationProvider, unchangedByRekey } from '../src/store/migrations.ts';
import { identityKey } from '../src/domain/identity-key.ts';
import { ENGINES, freshStore, startServer, post, type Engine, type FreshStore } from './helpers.ts';

/** A Roypi-dialect old service comparing names by toLowerCase (as declared), recording what it is asked. */
function caseInsensitiveOldService(accounts: Record<string, string>) {
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      asked.push(username);
      const name = String(username).toLowerCase();
      if (!Object.hasOwn(accounts, name) || accounts[name] !== password) return void res.writeHead(400).end('{}');
      const claims = Buffer.from(JSON.stringify({ username: name })).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `e30.${claims}.x`, user: name }));
    });
  });
  return new Promise<{ url: string; asked: string[]; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

/** A store as a version before 0006 left it, holding these users without a password (imported then). */
async function legacyStore(engine: Engine, usernames: string[], migrateTo = '0005_sweep_indexes', after?: (db: any) => Promise<void>): Promise<FreshStore> {
  const shared = await freshStore(engine);
  const connection = connect({ databaseUrl: shared.env.DATABASE_URL, dataDir: shared.env.LATCHKEY_DATA_DIR });
  try {
    const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
    const first = await migrator.migrateTo('0005_sweep_indexes');
    if (first.error) throw first.error;
    for (const username of usernames) {
      await connection.db
        .insertInto('users')
        .values({ username, email: null, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
        .execute();
    }
    if (migrateTo !== '0005_sweep_indexes') {
      const { error } = await migrator.migrateTo(migrateTo);
      if (error) throw error;
    }
    await after?.(connection.db);
  } finally {
    await connection.close();
  }
  return shared;
}

const login = (url: string, username: string, password: string) => post(`${url}/auth/access_token/`, { username, password }).then((r) => r.status);

describe('legacy waiting users: the name as stored before the key', () => {
  it('of every character a name stored before 0007 could hold, only ß rekeys to ASCII (what 0010 relies on)', () => {
    const toAscii: string[] = [];
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const stored = String.fromCodePoint(cp).normalize('NFKC').toLowerCase();
      const key = identityKey(stored);
      if (key !== stored && /^[\x00-\x7f]*$/.test(key)) toAscii.push(stored);
    }
    assert.deepEqual([...new Set(toAscii)], ['ß']);
    assert.deepEqual(['bob', 'strasse', 'jessie', 'zoë'].map(unchangedByRekey), ['bob', null, null, null]);
  });

  for (const engine of ENGINES) {
    it(`a login typed in a width form is not asked about; the lowercased name is (${engine.name})`, async () => {
      const old = await caseInsensitiveOldService({ alice: 'alice-old-password', 'ａｌｉｃｅ': 'fullwidth-old-password' });
      const shared = await legacyStore(engine, ['alice']);
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}`, LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' }, shared);
      try {
        assert.equal(await login(server.url, 'ａｌｉｃｅ', 'fullwidth-old-password'), 400);
        assert.deepEqual(old.asked, [], 'the width form is another name at the old service');
        assert.equal(await login(server.url, 'Alice', 'alice-old-password'), 200);
        assert.deepEqual(old.asked, ['alice']);
      } finally {
        await server.close();
        await old.close();
        await shared.drop();
      }
    });

    it(`a store rekeyed by 0007 before it kept the names: only names the rekey cannot have changed are asked about (${engine.name})`, async () => {
      const old = await caseInsensitiveOldService({ bob: 'bob-old-password', 'straße': 'victim-old-password', strasse: 'attacker-old-password' });
      // 0007 as it was: the names as stored before were not kept.
      const shared = await legacyStore(engine, ['bob', 'straße'], '0008_user_id_bounds', async (db) => {
        await sql`drop table legacy_login_names`.execute(db);
      });
      const server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}`, LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' }, shared);
      try {
        assert.equal((await server.core.store.userById(2))!.username, 'strasse');
        const statuses = {
          attacker: await login(server.url, 'strasse', 'attacker-old-password'),
          victim: await login(server.url, 'Straße', 'victim-old-password'),
          bob: await login(server.url, 'Bob', 'bob-old-password'),
        };
        assert.deepEqual(statuses, { attacker: 400, victim: 400, bob: 200 }, 'straße waits for a re-import; bob migrates');
        assert.deepEqual(old.asked, ['bob']);
      } finally {
        await server.close();
        await old.close();
        await shared.drop();
      }
    });
  }
});
