// Group commit for the embedded store. With synchronous=FULL every commit waits for an fsync;
// committed one by one, writes go no faster than the disk syncs. Here every write that arrives
// in one turn of the event loop (while the previous commit ran, requests piled up) joins one
// transaction, committed with one fsync at the end of the turn; each caller's promise settles
// only after that commit, so nothing is answered before it is durable. An explicit transaction
// is a savepoint inside the group, and holds everyone else off until it ends.
import type SQLite from 'better-sqlite3';
import { SelectQueryNode, type CompiledQuery, type DatabaseConnection, type Driver, type QueryResult } from 'kysely';

/** Prepared statements kept; Latchkey issues a few dozen distinct ones. */
const STATEMENT_CACHE = 256;

interface Group {
  committed: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

class Handle implements DatabaseConnection {
  constructor(private readonly driver: GroupCommitDriver) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute(this, query) as Promise<QueryResult<R>>;
  }

  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(query.query)) throw new Error('only select queries stream');
    const { rows } = await this.driver.execute(this, query);
    for (const row of rows) yield { rows: [row as R] };
  }
}

export class GroupCommitDriver implements Driver {
  private group?: Group;
  private flushQueued = false;
  /** The connection handle inside an explicit transaction, if any, and how others wait for it. */
  private owner?: Handle;
  private ownerDone?: Promise<void>;
  private releaseOwner?: () => void;
  private readonly statements = new Map<string, SQLite.Statement>();

  constructor(private readonly db: SQLite.Database) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new Handle(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    while (this.owner) await this.ownerDone;
    this.owner = connection as Handle;
    this.ownerDone = new Promise((resolve) => (this.releaseOwner = resolve));
    try {
      this.openGroup();
      this.db.exec('savepoint latchkey_tx');
    } catch (error) {
      this.endOwnership();
      throw error;
    }
  }

  async commitTransaction(): Promise<void> {
    const group = this.group;
    try {
      this.db.exec('release latchkey_tx');
    } finally {
      this.endOwnership();
    }
    if (group) {
      this.queueFlush();
      await group.committed;
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // Called again after a failed commit, when this transaction no longer owns anything.
    if (this.owner !== connection) return;
    try {
      if (this.db.inTransaction) {
        this.db.exec('rollback to latchkey_tx');
        this.db.exec('release latchkey_tx');
      }
    } finally {
      this.endOwnership();
    }
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    while (this.owner) await this.ownerDone;
    await this.flush();
    this.db.close();
  }

  /** Runs a statement now; a write (or anything run while writes are pending) settles at the commit. */
  async execute(handle: Handle, query: CompiledQuery): Promise<QueryResult<unknown>> {
    while (this.owner && this.owner !== handle) await this.ownerDone;
    const statement = this.prepare(query.sql);
    const inTransaction = this.owner === handle;
    // A read with no write pending reads committed rows only: answer at once.
    if (!inTransaction && !this.group && statement.readonly) return run(statement, query);
    this.openGroup();
    const group = this.group!;
    let result: QueryResult<unknown>;
    try {
      result = run(statement, query);
    } catch (error) {
      // Most errors undo only the statement; some (I/O, full disk) end the whole transaction.
      if (!this.db.inTransaction && this.group === group) {
        this.group = undefined;
        group.reject(error);
      }
      throw error;
    }
    if (inTransaction) return result;
    this.queueFlush();
    await group.committed;
    return result;
  }

  private prepare(sql: string): SQLite.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      if (this.statements.size >= STATEMENT_CACHE) this.statements.clear();
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private openGroup(): void {
    if (this.group) return;
    // IMMEDIATE: take the write lock now (waiting out busy_timeout for another process),
    // rather than fail with SQLITE_BUSY when a read must later become a write.
    this.db.exec('begin immediate');
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const committed = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers that gave up (a failed transaction) must not leave an unhandled rejection.
    committed.catch(() => {});
    this.group = { committed, resolve, reject };
  }

  private endOwnership(): void {
    this.owner = undefined;
    const release = this.releaseOwner;
    this.releaseOwner = undefined;
    this.ownerDone = undefined;
    release?.();
    if (this.group) this.queueFlush();
  }

  /** Commits at the end of this turn of the event loop, once every write it brought is in. */
  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.flushQueued = false;
    const group = this.group;
    // An explicit transaction still running commits the group when it ends.
    if (!group || this.owner) return;
    this.group = undefined;
    try {
      this.db.exec('commit');
      group.resolve();
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('rollback');
      group.reject(error);
    }
  }
}

function run(statement: SQLite.Statement, query: CompiledQuery): QueryResult<unknown> {
  const parameters = query.parameters as unknown[];
  if (statement.reader) return { rows: statement.all(parameters) };
  const { changes, lastInsertRowid } = statement.run(parameters);
  return {
    numAffectedRows: changes === undefined || changes === null ? undefined : BigInt(changes),
    insertId: lastInsertRowid === undefined || lastInsertRowid === null ? undefined : BigInt(lastInsertRowid),
    rows: [],
  };
}
