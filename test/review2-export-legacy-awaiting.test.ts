// Review 2 of 008dc3b/249077f (issue 12 item 3; INVARIANTS 1). A user imported before the
// identifier as the old service knows it was kept (a store from before 0006) has only its
// lowercased name; Latchkey refuses to ask the old service about it unless the operator declares
// the old service case-insensitive. But `users export` writes that user like any awaiting user,
// with the stored (lowercased) name and no mark of being legacy, and the import elsewhere takes
// that name as the identifier as imported. The target then asks an exact-matching old service
// about `alice`, and the other person `alice` there completes the account imported for `Alice`.
// Export and import launder the legacy state: the takeover, one hop further.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Migrator } from 'kysely';
import { connect } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations.ts';
import { ADMIN_TOKEN, ENGINES, freshStore, startServer, post, call, decodeJwt, type Engine, type FreshStore, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** A Roypi-dialect old service that compares names exactly. */
function exactOldService(accounts: Record<string, string>) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      if (!Object.hasOwn(accounts, username) || accounts[username] !== password) return void res.writeHead(400).end('{}');
      const claims = Buffer.from(JSON.stringify({ username })).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `e30.${claims}.x`, user: username }));
    });
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

/** A store as a version before 0006 left it: `Alice` imported without a password, stored lowercased. */
async function legacyStore(engine: Engine): Promise<FreshStore> {
  const shared = await freshStore(engine);
  const connection = connect({ databaseUrl: shared.env.DATABASE_URL, dataDir: shared.env.LATCHKEY_DATA_DIR });
  try {
    const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
    const { error } = await migrator.migrateTo('0005_sweep_indexes');
    if (error) throw error;
    await connection.db
      .insertInto('users')
      .values({ username: 'alice', email: 'alice@victim.example', password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
      .execute();
  } finally {
    await connection.close();
  }
  return shared;
}

for (const engine of ENGINES) {
  describe(`review2: export and import of a legacy awaiting user (${engine.name})`, () => {
    let old: Awaited<ReturnType<typeof exactOldService>>;
    let shared: FreshStore;
    let source: TestServer;
    let target: TestServer;
    before(async () => {
      old = await exactOldService({ Alice: 'victim-old-password', alice: 'attacker-old-password' });
      shared = await legacyStore(engine);
      source = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` }, shared);
      target = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` });
    });
    after(async () => {
      await target.close();
      await source.close();
      await shared.drop();
      await old.close();
    });

    it('the source refuses to ask about the lowercased name, and so does the target it is exported to', async () => {
      const atSource = await post(`${source.url}/auth/access_token/`, { username: 'alice', password: 'attacker-old-password' });
      assert.equal(atSource.status, 400, `source: ${atSource.text}`);
      const rows: string[] = [];
      for await (const row of source.core.transfer.exportUsers()) rows.push(JSON.stringify(row));
      const copied = await call(`${target.url}/admin/users/import`, { body: rows.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });
      assert.equal(copied.status, 200, copied.text);
      const attacker = await post(`${target.url}/auth/access_token/`, { username: 'alice', password: 'attacker-old-password' });
      const holds = attacker.status === 200 ? (await target.core.users.find({ username: 'alice' })).email : null;
      assert.deepEqual(
        { attacker: attacker.status, accountTaken: holds },
        { attacker: 400, accountTaken: null },
        `exported: ${rows.join('\n')}; attacker token: ${attacker.status === 200 ? JSON.stringify(decodeJwt(attacker.body.access_token)) : attacker.text}`,
      );
    });
  });
}
