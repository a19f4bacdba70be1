// Rate-limit tallies in SQL, for deployments without Redis: on PostgreSQL an unlogged table of
// the main database; on SQLite a file of their own beside it, written without fsync. Counts are
// worth sharing with the CLI and other instances, not worth a durable write per login attempt:
// a crash forgets at most the last moments of counting.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Tally, StoreTallies, TallyStore } from './limits.ts';
import type { TallyDatabase } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { explainQueries, type QueryPlan } from '../store/explain.ts';
import { STORE_RETRY_AFTER_SECONDS } from '../store/faults.ts';
import { DependencyUnavailable } from '../domain/unavailable.ts';

const toTally = (row: { count: number; reset_at: number; last_at: number }): Tally => ({
  count: Number(row.count),
  resetAt: Number(row.reset_at),
  lastAt: Number(row.last_at),
});

/** Tallies in the limit_tallies table of `db`; `close` ends what this module opened itself. */
export function sqlTallies(db: Kysely<TallyDatabase>, close: () => Promise<void> = async () => {}): StoreTallies & { close(): Promise<void> } {
  const under = (prefix: string) => sql<boolean>`substr(name, 1, ${prefix.length}) = ${prefix}`;
  return {
    close,
    async add(key, windowMs, now) {
      // One statement, so two racing requests cannot both read the old count.
      const { rows } = await sql<{ count: number; reset_at: number; last_at: number }>`
        insert into limit_tallies (name, count, reset_at, last_at) values (${key}, 1, ${now + windowMs}, ${now})
        on conflict (name) do update set
          count = case when limit_tallies.reset_at <= excluded.last_at then 1 else limit_tallies.count + 1 end,
          reset_at = case when limit_tallies.reset_at <= excluded.last_at then excluded.reset_at else limit_tallies.reset_at end,
          last_at = excluded.last_at
        returning count, reset_at, last_at`.execute(db);
      // An upsert with RETURNING always answers one row; none means the connection failed under
      // it (seen when a proxy dropped PostgreSQL's connections under load): the store cannot serve.
      if (!rows[0]) throw new DependencyUnavailable('store', 'the store answered a tally upsert with no row', STORE_RETRY_AFTER_SECONDS);
      return toTally(rows[0]);
    },
    async get(key, now) {
      const row = await db.selectFrom('limit_tallies').selectAll().where('name', '=', key).where('reset_at', '>', now).executeTakeFirst();
      return row ? toTally(row) : undefined;
    },
    async hold(key, until) {
      await db
        .updateTable('limit_tallies')
        .set({ reset_at: sql<number>`case when reset_at < ${until} then ${until} else reset_at end` })
        .where('name', '=', key)
        .execute();
    },
    async list(prefix, now) {
      const rows = await db.selectFrom('limit_tallies').selectAll().where(under(prefix)).where('reset_at', '>', now).execute();
      return rows.map((row) => ({ key: row.name, tally: toTally(row) }));
    },
    async delete(key, options) {
      await db.deleteFrom('limit_tallies').where(options?.prefix ? under(key) : sql<boolean>`name = ${key}`).execute();
    },
    async take(prefix, now) {
      const { rows } = await sql<{ name: string; count: number; reset_at: number; last_at: number }>`
        delete from limit_tallies where ${under(prefix)} returning name, count, reset_at, last_at`.execute(db);
      return rows.filter((row) => Number(row.reset_at) > now).map((row) => ({ key: row.name, tally: toTally(row) }));
    },
    async merge(key, tally, now) {
      // One statement, as add: racing writers of the key lose no count.
      await sql`
        insert into limit_tallies (name, count, reset_at, last_at) values (${key}, ${tally.count}, ${tally.resetAt}, ${tally.lastAt})
        on conflict (name) do update set
          count = case when limit_tallies.reset_at <= ${now} then excluded.count else limit_tallies.count + excluded.count end,
          reset_at = case when limit_tallies.reset_at <= ${now} or limit_tallies.reset_at < excluded.reset_at then excluded.reset_at else limit_tallies.reset_at end,
          last_at = case when limit_tallies.reset_at <= ${now} or limit_tallies.last_at < excluded.last_at then excluded.last_at else limit_tallies.last_at end`.execute(db);
    },
    async sweep(now) {
      await db.deleteFrom('limit_tallies').where('reset_at', '<=', now).execute();
    },
  };
}

/** The SQLite engine's tally file: `limits.sqlite` in the data directory, shared with the CLI. */
export function sqliteTallyDb(dataDir: string): Kysely<TallyDatabase> {
  const name = path.join(dataDir, 'limits.sqlite');
  const file = new SQLite(name);
  // It names client IPs: owner-only, like the store.
  fs.chmodSync(name, 0o600);
  file.pragma('journal_mode = WAL');
  file.pragma('synchronous = OFF');
  file.pragma('busy_timeout = 5000');
  file.exec('create table if not exists limit_tallies (name text primary key, count integer not null, reset_at integer not null, last_at integer not null)');
  // The hourly sweep finds ended counts by it, as on PostgreSQL (migration 0003), instead of
  // reading every count on the event loop: under a spray of logins there is one per (account, IP).
  file.exec('create index if not exists limit_tallies_reset_at on limit_tallies (reset_at)');
  return new Kysely<TallyDatabase>({ dialect: new SqliteDialect({ database: file }) });
}

/** The SQLite engine's tallies, in their own file. */
export function sqliteTallyFile(dataDir: string) {
  const db = sqliteTallyDb(dataDir);
  return sqlTallies(db, () => db.destroy());
}

/** The tallies next to `store` (open them after it migrated); close them before the store. */
export function storeTallies(store: Store) {
  const place = store.tallyPlace();
  if (place.engine === 'sqlite') return sqliteTallyFile(place.dataDir);
  return sqlTallies(place.db);
}

/** The query plans of what `fn` does with the tallies kept next to `store` (bench/hot-paths.ts). */
export async function explainTallies(store: Store, fn: (tallies: TallyStore) => Promise<unknown>): Promise<QueryPlan[]> {
  const place = store.tallyPlace();
  if (place.engine !== 'sqlite') return explainQueries(place.db, place.engine, (watched) => fn(sqlTallies(watched)));
  const db = sqliteTallyDb(place.dataDir);
  try {
    return await explainQueries(db, place.engine, (watched) => fn(sqlTallies(watched)));
  } finally {
    await db.destroy();
  }
}
