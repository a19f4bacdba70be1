// Opens the store: embedded SQLite by default, PostgreSQL when a URL is given.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import {
  Kysely,
  Migrator,
  sql,
  type Migration,
  SqliteAdapter,
  SqliteDialect,
  type MigrationLockOptions,
  type SqliteDialectConfig,
} from 'kysely';
import { PostgresJSDialect } from 'kysely-postgres-js';
import type { Database } from './schema.ts';
import { migrationProvider, type Engine } from './migrations.ts';
import { GroupCommitDriver } from './group-commit.ts';
import { GuardedDriver, StoreHealth, withDeadline, type Deadline } from './faults.ts';
import { redactUrl } from '../platform/redact.ts';

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
  private readonly settings: SqliteDialectConfig;

  override createAdapter() {
    return new SqliteLockingAdapter();
  }

  override createDriver() {
    return new GuardedDriver(new GroupCommitDriver(this.settings.database as SQLite.Database), this.health);
  }

  constructor(
    settings: SqliteDialectConfig,
    private readonly health: StoreHealth,
  ) {
    super(settings);
    this.settings = settings;
  }
}

/** postgres.js under Kysely, every call guarded by a deadline (src/store/faults.ts). */
class GuardedPostgresDialect extends PostgresJSDialect {
  constructor(
    config: ConstructorParameters<typeof PostgresJSDialect>[0],
    private readonly health: StoreHealth,
    private readonly deadline: Deadline,
  ) {
    super(config);
  }

  override createDriver() {
    return new GuardedDriver(super.createDriver(), this.health, this.deadline);
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
  /** What recent writes said, for readiness. */
  health: StoreHealth;
  /** The deadline of a call to PostgreSQL, ms; unset on the embedded store (its calls are in-process). */
  deadline: Deadline;
}

/** The default deadline of a call to PostgreSQL (LATCHKEY_DB_TIMEOUT_MS), ms. */
export const DEFAULT_DB_TIMEOUT_MS = 5000;
const CLOSE_TIMEOUT_SECONDS = 5;
/** A connection idle this long is closed (postgres.js reopens one when needed), seconds. */
const IDLE_TIMEOUT_SECONDS = 300;

function exactNumber(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError('a bigint column holds a value past 2^53 - 1');
  return value;
}

/** The embedded store's file in a data dir. */
export function sqliteFile(dataDir: string): string {
  return path.join(dataDir, 'latchkey.sqlite');
}

/** How a store is named in logs and messages, without credentials; opens nothing. */
export function describeStore(options: { databaseUrl?: string; dataDir: string }): string {
  if (!options.databaseUrl) return `sqlite:${sqliteFile(options.dataDir)}`;
  return redactUrl(options.databaseUrl).replace(/^postgres:/, 'postgresql:');
}

export function connect(options: { databaseUrl?: string; dataDir: string; timeoutMs?: number }): Connection {
  const health = new StoreHealth();
  if (options.databaseUrl) {
    const deadlineMs = options.timeoutMs ?? DEFAULT_DB_TIMEOUT_MS;
    const deadline: Deadline = { ms: deadlineMs };
    const client = postgres(options.databaseUrl, {
      max: 10,
      // An unreachable host fails in the deadline rather than postgres.js's 30 s.
      connect_timeout: deadlineMs / 1000,
      idle_timeout: IDLE_TIMEOUT_SECONDS,
      // postgres.js waits up to 20 s before reconnecting after failures in a row, so a database
      // back in a second stayed unusable for that long; retry within a second, with jitter.
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2),
      // The server's side of the deadline: a statement past it is cancelled there too, and a
      // session left in a transaction by a vanished client gives its locks back.
      connection: { statement_timeout: deadlineMs, idle_in_transaction_session_timeout: deadlineMs * 2 } as any,
      onnotice: () => {},
      // Epoch-millisecond columns and ids are bigint: read as numbers, exactly or not at all (a
      // value past 2^53 - 1 would be read as a neighbour; ids are kept below it, migration 0008).
      types: { bigint: { to: 20, from: [20], serialize: (v: number) => String(v), parse: exactNumber } } as any,
    });
    const db = new Kysely<Database>({ dialect: new GuardedPostgresDialect({ postgres: client }, health, deadline) });
    return {
      db,
      health,
      deadline,
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
  const db = new Kysely<Database>({ dialect: new SqliteLockingDialect({ database: sqlite }, health) });
  return { db, health, deadline: {}, engine: 'sqlite', describe: describeStore(options), sqlite, dataDir: options.dataDir, close: () => db.destroy() };
}

/**
 * The first round trip, within the deadline: a server that answers with something other than
 * PostgreSQL makes postgres.js reconnect at once, forever, and a start would hang silently.
 */
export async function firstContact(connection: Pick<Connection, 'db' | 'deadline'>): Promise<void> {
  await withDeadline(sql`select 1`.execute(connection.db), connection.deadline.ms, 'first connection');
}

/** PostgreSQL: a migration may take longer than a request's statement deadline (an index on a big table). */
function unbounded(migration: Migration): Migration {
  return {
    ...migration,
    async up(db) {
      await sql`set local statement_timeout = 0`.execute(db);
      await migration.up(db);
    },
  };
}

export async function migrate(connection: Pick<Connection, 'db' | 'engine' | 'deadline'>): Promise<string[]> {
  // Migrations are independent of each other and land from parallel branches, so one named
  // earlier than the newest applied one still runs rather than refusing to start.
  const provider = migrationProvider(connection.engine);
  const guarded = {
    async getMigrations() {
      const all = await provider.getMigrations();
      return connection.engine === 'postgres' ? Object.fromEntries(Object.entries(all).map(([name, m]) => [name, unbounded(m)])) : all;
    },
  };
  const migrator = new Migrator({ db: connection.db, provider: guarded, allowUnorderedMigrations: true });
  // Only the first contact has the request deadline: a migration may rightly take longer.
  await firstContact(connection);
  const requestDeadline = connection.deadline.ms;
  connection.deadline.ms = undefined;
  const { error, results } = await migrator.migrateToLatest().finally(() => (connection.deadline.ms = requestDeadline));
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
