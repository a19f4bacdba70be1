// Opens the store: embedded SQLite by default, PostgreSQL when a URL is given.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import {
  Kysely,
  Migrator,
  SqliteAdapter,
  SqliteDialect,
  type MigrationLockOptions,
  type SqliteDialectConfig,
} from 'kysely';
import { PostgresJSDialect } from 'kysely-postgres-js';
import type { Database } from './schema.ts';
import { migrationProvider, type Engine } from './migrations.ts';
import { GroupCommitDriver } from './group-commit.ts';

// Kysely assumes one process per SQLite file, so its SQLite migration lock does nothing. The
// CLI and a server can open the same file at once: migrations run in one transaction (SQLite's
// DDL is transactional), whose first write, to the lock row, takes SQLite's write lock until
// it commits, so the other process waits its turn and then finds nothing left to do.
class SqliteLockingAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl() {
    return true;
  }

  override async acquireMigrationLock(db: Kysely<any>, options: MigrationLockOptions): Promise<void> {
    await db.updateTable(options.lockTable).set({ is_locked: 1 }).where('id', '=', options.lockRowId).execute();
  }
}

class SqliteLockingDialect extends SqliteDialect {
  constructor(private readonly settings: SqliteDialectConfig) {
    super(settings);
  }

  override createAdapter() {
    return new SqliteLockingAdapter();
  }

  override createDriver() {
    return new GroupCommitDriver(this.settings.database as SQLite.Database);
  }
}

export interface Connection {
  db: Kysely<Database>;
  engine: Engine;
  describe: string;
  /** The driver's own handle, for what Kysely does not cover (LISTEN/NOTIFY, data_version). */
  pg?: postgres.Sql;
  sqlite?: SQLite.Database;
  /** Closes every connection, waiting at most CLOSE_TIMEOUT_SECONDS for queries in flight. */
  close(): Promise<void>;
  /** The embedded store's folder; unset on PostgreSQL. */
  dataDir?: string;
}

/** How long a PostgreSQL server may take to answer the first connection, and queries at close. */
export const CONNECT_TIMEOUT_SECONDS = 5;
const CLOSE_TIMEOUT_SECONDS = 5;

/** The embedded store's file in a data dir. */
export function sqliteFile(dataDir: string): string {
  return path.join(dataDir, 'latchkey.sqlite');
}

/** How a store is named in logs and messages, without credentials; opens nothing. */
export function describeStore(options: { databaseUrl?: string; dataDir: string }): string {
  if (!options.databaseUrl) return `sqlite:${sqliteFile(options.dataDir)}`;
  const url = new URL(options.databaseUrl);
  return `postgresql://${url.host}${url.pathname}`;
}

export function connect(options: { databaseUrl?: string; dataDir: string }): Connection {
  if (options.databaseUrl) {
    const client = postgres(options.databaseUrl, {
      max: 10,
      // An unreachable host fails the start in seconds rather than postgres.js's 30.
      connect_timeout: CONNECT_TIMEOUT_SECONDS,
      onnotice: () => {},
      // Epoch-millisecond columns are bigint; they fit a JS number exactly until the year 287396.
      types: { bigint: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) } } as any,
    });
    const db = new Kysely<Database>({ dialect: new PostgresJSDialect({ postgres: client }) });
    return {
      db,
      engine: 'postgres',
      describe: describeStore(options),
      pg: client,
      // postgres.js's end() without a timeout never settles once connecting has failed (seen after
      // the database was dropped under a running server), which would hang shutdown. Kysely's own
      // destroy calls end() again, and gets this same, bounded, promise.
      close: async () => {
        await client.end({ timeout: CLOSE_TIMEOUT_SECONDS });
        await db.destroy();
      },
    };
  }
  // The store holds password hashes: only its owner may read it.
  fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const file = sqliteFile(options.dataDir);
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  // Acknowledged writes must survive a power cut, not just a process crash.
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteLockingDialect({ database: sqlite }) });
  return { db, engine: 'sqlite', describe: describeStore(options), sqlite, dataDir: options.dataDir, close: () => db.destroy() };
}

export async function migrate(connection: Pick<Connection, 'db' | 'engine'>): Promise<string[]> {
  // Migrations are independent of each other and land from parallel branches, so one named
  // earlier than the newest applied one still runs rather than refusing to start.
  const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
