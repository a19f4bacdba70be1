// Attack review (issue 12, items 2 and 3): a user imported before the original identifier was kept
// waits with only its stored name; with LATCHKEY_MIGRATE_CASE_INSENSITIVE=true it is asked about
// at the old service by that name. But migration 0007 rewrote that name to the new identity key
// (full case folding): the stored `straße` became `strasse`. An old service that matches names
// case-insensitively still tells `straße` and `strasse` apart (lowercase keeps ß), so Latchkey now
// asks about another person's account: the attacker's old-service `strasse` password completes the
// victim's migration. The takeover, through the rekeying.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Migrator } from 'kysely';
import { connect } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations.ts';
import { freshStore, startServer, post, type FreshStore, type TestServer } from './helpers.ts';

/** A Roypi-dialect old service that compares names case-insensitively (toLowerCase), as declared. */
function caseInsensitiveOldService(accounts: Record<string, string>) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      const name = String(username).toLowerCase();
      if (!Object.hasOwn(accounts, name) || accounts[name] !== password) return void res.writeHead(400).end('{}');
      const claims = Buffer.from(JSON.stringify({ username: name })).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `e30.${claims}.x`, user: name }));
    });
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

describe('attack: a waiting user rekeyed by migration 0007, asked about under its new key', () => {
  let shared: FreshStore;
  let old: Awaited<ReturnType<typeof caseInsensitiveOldService>>;
  let server: TestServer;
  before(async () => {
    shared = await freshStore({ name: 'sqlite' });
    // A store from before lazy migration's state and the key: the victim `Straße` imported without a
    // password (stored by the one-pass key as `straße`).
    const connection = connect({ dataDir: shared.env.LATCHKEY_DATA_DIR });
    try {
      const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
      const { error } = await migrator.migrateTo('0005_sweep_indexes');
      if (error) throw error;
      await connection.db
        .insertInto('users')
        .values({ username: 'straße', email: null, password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
        .execute();
    } finally {
      await connection.close();
    }
    old = await caseInsensitiveOldService({ 'straße': 'victim-old-password', strasse: 'attacker-old-password' });
    server = await startServer({ name: 'sqlite' }, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}`, LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' }, shared);
  });
  after(async () => {
    await server.close();
    await old.close();
    await shared.drop();
  });

  it("the old service's other account `strasse` cannot complete the waiting `straße`", async () => {
    const victimId = (await server.core.store.userById(1))!;
    assert.equal(victimId.username, 'strasse', 'migration 0007 rekeyed the stored name');
    const attacker = await post(`${server.url}/auth/access_token/`, { username: 'strasse', password: 'attacker-old-password' });
    const victim = await post(`${server.url}/auth/access_token/`, { username: 'Straße', password: 'victim-old-password' });
    assert.deepEqual(
      { attacker: attacker.status, victim: victim.status },
      { attacker: 400, victim: 200 },
      `attacker: ${attacker.status} ${attacker.text.slice(0, 60)}; victim: ${victim.status} ${victim.text}`,
    );
  });
});
