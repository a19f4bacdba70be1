// The store on each engine: migrations are idempotent and safe to run from two instances at
// once, times come back as exact numbers, and unique clashes surface as one error type.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, freshStore, type FreshStore } from './helpers.ts';
import { Store, UniqueViolation } from '../src/store/store.ts';
import { migrationProvider } from '../src/store/migrations.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createUser, Credentials } from '../src/core/credentials.ts';
import { Audit } from '../src/core/audit.ts';

const run = promisify(execFile);
const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;

for (const engine of ENGINES) {
  describe(`store on ${engine.name}`, () => {
    let fresh: FreshStore;
    let a: Store;
    let b: Store;

    // Two stores on one migrated database; the migration test makes a database of its own.
    before(async () => {
      fresh = await freshStore(engine);
      const options = { databaseUrl: fresh.env.DATABASE_URL, dataDir: fresh.env.LATCHKEY_DATA_DIR };
      a = Store.open(options);
      b = Store.open(options);
      await a.migrate();
    });
    after(async () => {
      await a.close();
      await b.close();
      await fresh.drop();
    });

    it('migrates once, even when two processes start together', async () => {
      const empty = await freshStore(engine);
      const options = { databaseUrl: empty.env.DATABASE_URL, dataDir: empty.env.LATCHKEY_DATA_DIR };
      const [first, second] = [Store.open(options), Store.open(options)];
      try {
        const migrate = () => run(process.execPath, [CLI, 'migrate'], { env: { ...process.env, ...empty.env } });
        const results = await Promise.all(Array.from({ length: 6 }, migrate));
        const applied = results.flatMap((r) => JSON.parse(r.stdout).applied);
        // Each migration applied exactly once, by one of them.
        const all = Object.keys(await migrationProvider(engine.name).getMigrations());
        assert.deepEqual(applied.sort(), all.sort());
        assert.deepEqual(await first.migrate(), []);
        assert.deepEqual(await second.migrate(), []);
      } finally {
        await first.close();
        await second.close();
        await empty.drop();
      }
    });

    it('keeps epoch milliseconds exact and maps unique clashes', async () => {
      const at = Date.UTC(2286, 10, 20, 17, 46, 39, 999); // past 2^53 microseconds, well within 2^53 ms
      const user = await createUser(a, {
        username: 'clock',
        email: 'clock@example.com',
        password_hash: null,
        status: 'active',
        managed_by: 'external',
        created_at: at,
        updated_at: at,
        password_changed_at: null,
      });
      assert.equal(typeof user.id, 'number');
      const read = await b.userById(user.id);
      assert.equal(read!.created_at, at);
      assert.equal(typeof read!.created_at, 'number');
      await assert.rejects(createUser(a, { ...user, id: undefined as never, email: 'other@example.com' }), UniqueViolation);
      await assert.rejects(createUser(a, { ...user, id: undefined as never, username: 'other' }), UniqueViolation);
    });

    it('rolls a failed transaction back whole', async () => {
      const now = Date.now();
      const user = await createUser(a, {
        username: 'halfway',
        email: 'halfway@example.com',
        password_hash: null,
        status: 'active',
        managed_by: 'external',
        created_at: now,
        updated_at: now,
        password_changed_at: null,
      });
      await assert.rejects(
        a.transaction(async (tx) => {
          await new Credentials({ store: a, audit: new Audit(a, Date.now), clock: Date.now }).change(user.id, { status: 'disabled' }, { kind: 'user_disabled', tx });
          throw new Error('halfway');
        }),
        /halfway/,
      );
      assert.equal((await b.userById(user.id))!.status, 'active');
    });
  });
}
