// A fresh PostgreSQL database of its own for a test or a bench run, created beside the one the
// base URL names and dropped (forcibly, connections and all) when done. Shared by test/helpers.ts
// and the benches, so both set up PostgreSQL the same way.
import crypto from 'node:crypto';
import postgres from 'postgres';
import { Migrator, type Kysely } from 'kysely';
import { connect } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations.ts';

export interface FreshDatabase {
  /** The base URL with its database replaced by the fresh one. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Runs one statement on the base URL's server, on a connection of its own. */
async function onServer(baseUrl: string, statement: string): Promise<void> {
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

/** Creates an empty database named `<prefix>_<random hex>` on the server `baseUrl` points at. */
export async function freshPostgres(baseUrl: string, prefix = 'latchkey_test'): Promise<FreshDatabase> {
  const name = `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
  await onServer(baseUrl, `create database ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => onServer(baseUrl, `drop database if exists ${name} with (force)`),
  };
}

/**
 * Brings the store at `env` (a fresh one) up to `migration` only, as an older release left it,
 * and lets `fill` write rows the current code could no longer make; later migrations run when a
 * server or the CLI next opens it.
 */
export async function storeAsOf(
  env: Record<string, string>,
  migration: string,
  fill: (db: Kysely<any>) => Promise<void>,
): Promise<void> {
  const connection = connect({ databaseUrl: env.DATABASE_URL || undefined, dataDir: env.LATCHKEY_DATA_DIR });
  try {
    const migrator = new Migrator({ db: connection.db, provider: migrationProvider(connection.engine), allowUnorderedMigrations: true });
    const { error } = await migrator.migrateTo(migration);
    if (error) throw error;
    await fill(connection.db);
  } finally {
    await connection.close();
  }
}
