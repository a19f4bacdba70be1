// No hot path scans a table that grows with the users. On each engine a store is seeded with
// 10,000 users and 20,000 sessions (enough that PostgreSQL's planner, with fresh statistics,
// prefers an index wherever one serves), and every query of every hot path (bench/hot-paths.ts)
// is explained: none may scan users, sessions or audit_events, and each read, update or delete
// of them must go through an index. This is the guard that keeps `--users 1000000` honest
// without timing anything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, freshStore, type FreshStore } from './helpers.ts';
import { sql } from 'kysely';
import { Store } from '../src/store/store.ts';
import { explain, queryBuilder } from '../src/store/diagnostics.ts';
import { seedStore, type SeededLogin } from '../bench/seed.ts';
import { hotPathPlans, planProblem, type PathPlan } from '../bench/hot-paths.ts';

// Any argon2id string will do: nothing here checks a password.
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNhbHRzZWVkc2FsdA$5mVfYl8rZ8z5o6nQzj4rX7oQ1m1b0c4kq2xVn3bq9Ys';

for (const engine of ENGINES) {
  describe(`query plans of the hot paths on ${engine.name}`, () => {
    let fresh: FreshStore;
    let store: Store;
    let login: SeededLogin;
    let plans: PathPlan[];
    /** A Kysely connection of the test's own to the same database, for queries no store method makes. */

    before(async () => {
      fresh = await freshStore(engine);
      store = Store.open({ databaseUrl: fresh.env.DATABASE_URL, dataDir: fresh.env.LATCHKEY_DATA_DIR });
      await store.migrate();
      [login] = await seedStore(store, { users: 10_000, passwordHash: HASH, keep: 1 });
      plans = await hotPathPlans(store, login);
    });
    after(async () => {
      await store.close();
      await fresh.drop();
    });

    it('explains every hot path', () => {
      const paths = new Set(plans.map((p) => p.what.split(':')[0]));
      for (const path of ['verify', 'refresh', 'login (/v1, /auth)', 'login (/api)', 'login', 'revoke', 'hourly sweep']) {
        assert.ok(paths.has(path), `plans for ${path}`);
      }
      // SQLite has nothing to say about a plain insert; everything else has a plan.
      assert.ok(plans.every((p) => p.plan.length > 0 || /^\s*insert\b/i.test(p.sql)));
    });

    it('scans no large table, and reaches each through an index', () => {
      const problems = plans.flatMap((p) => {
        const problem = planProblem(p);
        return problem ? [`${p.what}: ${problem}\n    ${p.sql}\n    ${p.plan.join('\n    ')}`] : [];
      });
      assert.deepEqual(problems, []);
    });

    // The sweep of ended rate-limit counts reads them on the event loop, and a spray of logins
    // leaves a count per (account, IP). On SQLite (limits.sqlite, beside the store) the plan must
    // use the reset_at index; PostgreSQL's planner rightly scans a table of a few rows, so there
    // the index must exist for when the table grows.
    it('sweeps ended rate-limit counts by an index', async () => {
      if (engine.name === 'sqlite') {
        const sweep = plans.find((p) => p.what === 'hourly sweep: ended counts');
        assert.match(sweep?.plan.join('\n') ?? '', /^SEARCH limit_tallies USING INDEX limit_tallies_reset_at/);
      } else {
        const { rows } = await sql<{ indexdef: string }>`select indexdef from pg_indexes where tablename = 'limit_tallies' and indexname = 'limit_tallies_reset_at'`.execute(queryBuilder(store));
        assert.match(rows[0]?.indexdef ?? '', /\(reset_at\)/);
      }
    });

    it('sees a scan where there is one (the check is not blind)', async () => {
      // A query no index serves, run for real on this engine. No store method is such a query
      // (that is the point), so it goes to the store's own Kysely instance.
      const [unindexed] = await explain(store, (s) =>
        queryBuilder(s).selectFrom('sessions').select('id').where('ip', '=', '10.0.0.1').execute(),
      );
      assert.equal(planProblem({ what: 'sessions by ip', ...unindexed }), 'scans sessions');
    });
  });
}
