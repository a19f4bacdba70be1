// The store's faults, as the core sees them: every call to the database has a deadline, and a
// driver error that means "the database cannot serve now" (connection refused, reset or
// terminated, no answer in time, disk full, read-only, busy) becomes one typed core error,
// DependencyUnavailable, which each API answers as a 503 with Retry-After. What writes did
// lately is remembered for readiness: a `SELECT 1` cannot see a full disk.
import type { CompiledQuery, DatabaseConnection, Driver, QueryCompiler, QueryResult, TransactionSettings } from 'kysely';
import { DependencyUnavailable } from '../domain/unavailable.ts';

/** How long a client should wait before trying again, seconds. */
export const STORE_RETRY_AFTER_SECONDS = 5;
/** How long a failed write keeps readiness at 503 unless a write succeeds first, ms. */
export const WRITE_FAILURE_MEMORY_MS = 30_000;

// Node's and postgres.js's codes for a connection that failed or went away.
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
]);
// SQLite: the disk is full or failing, the file is read-only, or another writer held the lock past busy_timeout.
const SQLITE_CODES = /^SQLITE_(FULL|IOERR|READONLY|BUSY|CANTOPEN|LOCKED)/;
// PostgreSQL SQLSTATEs: 08 connection exceptions, 53 insufficient resources (53100 disk full),
// 57P01-57P05 admin/crash shutdown, cannot connect now, idle timeouts, 57014 statement timeout,
// 25006 read-only transaction (a standby after failover), 40001/40P01 serialization and deadlock,
// 26000 a statement the connection had prepared, lost with the connection it was prepared on.
const PG_STATES = /^(08|53|57P0[1-5]$|57014$|25006$|26000$|40001$|40P01$)/;

/** The driver error as DependencyUnavailable when it means the store cannot serve now, else undefined. */
export function unavailability(error: unknown): DependencyUnavailable | undefined {
  if (error instanceof DependencyUnavailable) return error;
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') return undefined;
  if (CONNECTION_CODES.has(code) || SQLITE_CODES.test(code) || PG_STATES.test(code)) {
    return new DependencyUnavailable('store', `the store cannot serve now (${code})`, STORE_RETRY_AFTER_SECONDS, { cause: error });
  }
  return undefined;
}

/** What recent writes said, for readiness. */
export class StoreHealth {
  private failedWriteAt?: number;
  private failedWhy?: string;

  wrote(): void {
    this.failedWriteAt = undefined;
  }

  writeFailed(why: string): void {
    this.failedWriteAt = Date.now();
    this.failedWhy = why;
  }

  /** Why the store cannot take a write, if a recent write failed and none succeeded since. */
  writeProblem(): string | undefined {
    if (this.failedWriteAt === undefined || Date.now() - this.failedWriteAt > WRITE_FAILURE_MEMORY_MS) return undefined;
    return this.failedWhy;
  }
}

const WRITES = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode']);

/** Runs `work` within `ms`, or rejects with DependencyUnavailable; `abandoned` gets a late result. */
export function withDeadline<T>(work: Promise<T>, ms: number | undefined, what: string, abandoned?: (late: T) => void): Promise<T> {
  if (!ms) return work;
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new DependencyUnavailable('store', `the store did not answer within ${ms} ms (${what})`, STORE_RETRY_AFTER_SECONDS));
    }, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        if (late) abandoned?.(value);
        else resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        if (!late) reject(error);
      },
    );
  });
}

/** The deadline of every call, ms (none when unset); lifted while migrations run. */
export interface Deadline {
  ms?: number;
}

/**
 * Wraps a Kysely driver: a deadline on acquiring a connection and on every statement (deadlineMs;
 * none when unset, as for the embedded store), driver errors classified, write outcomes recorded.
 * A statement past its deadline is answered at once; it may still finish on its connection,
 * whose later statements queue behind it, in order.
 */
export class GuardedDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly health: StoreHealth,
    private readonly deadline: Deadline = {},
  ) {}

  private async guard<T>(what: string, work: () => Promise<T>, write: boolean, abandoned?: (late: T) => void): Promise<T> {
    try {
      const result = await withDeadline(work(), this.deadline.ms, what, abandoned);
      if (write) this.health.wrote();
      return result;
    } catch (error) {
      const unavailable = unavailability(error);
      if (!unavailable) throw error;
      if (write) this.health.writeFailed(unavailable.message);
      throw unavailable;
    }
  }

  init() {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.guard('waiting for a connection', () => this.inner.acquireConnection(), false, (late) => {
      void this.inner.releaseConnection(late).catch(() => {});
    });
    return new GuardedConnection(connection, this);
  }

  /** @internal */
  execute<R>(connection: DatabaseConnection, query: CompiledQuery): Promise<QueryResult<R>> {
    return this.guard(`statement`, () => connection.executeQuery<R>(query), WRITES.has(query.query.kind));
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    return this.guard('begin', () => this.inner.beginTransaction(innerOf(connection), settings), false);
  }

  commitTransaction(connection: DatabaseConnection) {
    return this.guard('commit', () => this.inner.commitTransaction(innerOf(connection)), true);
  }

  rollbackTransaction(connection: DatabaseConnection) {
    return this.guard('rollback', () => this.inner.rollbackTransaction(innerOf(connection)), false);
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await this.guard('savepoint', () => this.inner.savepoint!(innerOf(connection), name, compile), false);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await this.guard('rollback to savepoint', () => this.inner.rollbackToSavepoint!(innerOf(connection), name, compile), false);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await this.guard('release savepoint', () => this.inner.releaseSavepoint!(innerOf(connection), name, compile), false);
  }

  releaseConnection(connection: DatabaseConnection) {
    return this.inner.releaseConnection(innerOf(connection));
  }

  destroy() {
    return this.inner.destroy();
  }
}

class GuardedConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    private readonly driver: GuardedDriver,
  ) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute<R>(this.inner, query);
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

const innerOf = (connection: DatabaseConnection) => (connection instanceof GuardedConnection ? connection.inner : connection);
