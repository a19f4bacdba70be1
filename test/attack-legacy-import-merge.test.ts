// Attack review (issue 12, item 2: "An import row that lands on an existing account under the key
// is rejected with its line, never merged"). A user imported without a password before the
// original identifier was kept (only the stored key `alice`) is the same account, for a re-import
// with --update, as ANY row whose name has that key: a fullwidth `ａｌｉｃｅ` row (another person in
// an old service that tells them apart) is merged into it and sets its password and email. The
// README's own remedy for these users is exactly such a re-import.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Migrator } from 'kysely';
import { connect } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations.ts';
import { ADMIN_TOKEN, freshStore, startServer, call, post, type FreshStore, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('attack: a legacy waiting user merged with another name under its key at re-import', () => {
  let shared: FreshStore;
  let server: TestServer;
  before(async () => {
    shared = await freshStore({ name: 'sqlite' });
    const connection = connect({ dataDir: shared.env.LATCHKEY_DATA_DIR });
    try {
      const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
      const { error } = await migrator.migrateTo('0005_sweep_indexes');
      if (error) throw error;
      await connection.db
        .insertInto('users')
        .values({ username: 'alice', email: 'alice@example.com', password_hash: null, status: 'active', managed_by: 'external', created_at: 1, updated_at: 1, password_changed_at: null } as any)
        .execute();
    } finally {
      await connection.close();
    }
    server = await startServer({ name: 'sqlite' }, {}, shared);
  });
  after(async () => {
    await server.close();
    await shared.drop();
  });

  it('a fullwidth row is rejected with its line, not merged into the waiting alice', async () => {
    const reply = await call(`${server.url}/admin/users/import?update=true`, {
      body: JSON.stringify({ username: 'ａｌｉｃｅ', email: 'mallory@example.com', password: 'mallory-password-1' }),
      headers: { ...admin, 'content-type': 'application/x-ndjson' },
    });
    const login = await post(`${server.url}/v1/login`, { username: 'alice', password: 'mallory-password-1' });
    assert.deepEqual(
      { rejectedLines: reply.body.rejects?.map((r: { line: number }) => r.line), malloryLogsInAsAlice: login.status === 200 },
      { rejectedLines: [1], malloryLogsInAsAlice: false },
      reply.text,
    );
  });
});
