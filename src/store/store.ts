// Every query Latchkey makes, behind named methods, so the core never sees SQL.
import { sql, type Kysely, type Transaction } from 'kysely';
import type {
  CodePurpose,
  Database,
  OneTimeCode,
  Session,
  SigningKeyRow,
  IdentityCollision,
  LookAlikeAccount,
  LegacyLoginNames,
  TallyDatabase,
  User,
  UserMigration,
} from './schema.ts';
import type { CredentialKey } from './credential-key.ts';
import { connect, migrate, type Connection } from './db.ts';
import { withDeadline } from './faults.ts';
import { ChangeFeed, ChangeTracker, type Change } from './changes.ts';
import { peersOf, type Peers } from './peers.ts';
import { prepared } from './prepared.ts';

declare const diagnosticsBrand: unique symbol;
/** What opens a store's internals; its one value never leaves src/store/diagnostics.ts. */
export type DiagnosticsKey = { readonly [diagnosticsBrand]: true };

export class UniqueViolation extends Error {}
/** A user id past 2^53 - 1 was asked for, or would have been handed out (migration 0008). */
export class IdOutOfRange extends Error {}

export function isIdOutOfRange(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  // PostgreSQL: the check constraint, or the identity at its maximum; SQLite: the trigger.
  return e?.code === '23514' || e?.code === '2200H' || (e?.code === 'SQLITE_CONSTRAINT_TRIGGER' && /user id out of range/.test(e.message ?? ''));
}

/** The store refused a deleted account's id for a new one (migration 0011's trigger). */
export function isDeletedIdReuse(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (e?.code === 'P0001' || e?.code === 'SQLITE_CONSTRAINT_TRIGGER') && /user id was deleted/.test(e.message ?? '');
}

export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The session and its user's columns, prefixed so the two cannot collide. */
const sessionWithUserQuery = (db: Kysely<Database>, column: 'sessions.id' | 'sessions.refresh_token_hash', value: string) =>
  db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('sessions')
    .select([
      'users.username as u_username',
      'users.email as u_email',
      'users.password_hash as u_password_hash',
      'users.status as u_status',
      'users.managed_by as u_managed_by',
      'users.created_at as u_created_at',
      'users.updated_at as u_updated_at',
      'users.password_changed_at as u_password_changed_at',
      'users.security_stamp as u_security_stamp',
      'users.legacy_id as u_legacy_id',
      'users.username_skeleton as u_username_skeleton',
      'users.email_skeleton as u_email_skeleton',
    ])
    .where(column, '=', value);
// Online verification (on a cache miss) and every refresh: compiled once (src/store/prepared.ts).
const sessionWithUserById = prepared((db: Kysely<Database>, id: string) => sessionWithUserQuery(db, 'sessions.id', id));
const sessionWithUserByRefreshHash = prepared((db: Kysely<Database>, hash: string) => sessionWithUserQuery(db, 'sessions.refresh_token_hash', hash));
const countRefresh = prepared((db: Kysely<Database>, id: string, limit: number, now: number) =>
  db
    .updateTable('sessions')
    .set((eb) => ({ refresh_count: eb('refresh_count', '+', 1), last_used_at: now }))
    .where('id', '=', id)
    .where('refresh_count', '<', limit)
    .where('revoked_at', 'is', null),
);

export class Store {
  readonly engine: Connection['engine'];
  readonly describe: string;
  /** Committed changes to sessions, users and keys, from this instance and (once watching) its peers. */
  readonly changes: ChangeFeed;
  private readonly db: Kysely<Database> | Transaction<Database>;
  private readonly root: Kysely<Database>;
  private readonly connection: Connection;
  private readonly peers: Peers;

  private constructor(connection: Connection, shared?: { changes: ChangeFeed; peers: Peers }, trx?: Transaction<Database>, pending?: Change[]) {
    this.engine = connection.engine;
    this.describe = connection.describe;
    this.connection = connection;
    this.root = connection.db;
    this.changes = shared?.changes ?? new ChangeFeed();
    this.peers = shared?.peers ?? peersOf(connection);
    // Every query goes through the tracker: a write outside a transaction is announced once it
    // has run; one inside waits for the commit, so no reader can cache the old row after it.
    const tracker = new ChangeTracker(pending ? (changes) => pending.push(...changes) : (changes) => this.announce(changes));
    this.db = (trx ?? connection.db).withPlugin(tracker);
  }

  static open(options: { databaseUrl?: string; dataDir: string; timeoutMs?: number }): Store {
    return new Store(connect(options));
  }

  private announce(changes: readonly Change[]): void {
    if (changes.length === 0) return;
    this.changes.emit(changes);
    this.peers.publish(changes);
  }

  /** Starts hearing other instances' (and processes') changes on the same store. */
  watchPeers(): Promise<void> {
    return this.peers.listen(this.changes);
  }

  migrate(): Promise<string[]> {
    return migrate({ db: this.root, engine: this.engine, deadline: this.connection.deadline });
  }

  /** Whether the schema was ever created here (a migration ran), without creating anything. */
  async hasSchema(): Promise<boolean> {
    // Kysely's Migrator keeps its journal in kysely_migration.
    const found =
      this.engine === 'sqlite'
        ? await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = 'kysely_migration'`.execute(this.root)
        : await sql<{ n: number }>`select count(*)::int as n from pg_catalog.pg_tables where tablename = 'kysely_migration' and schemaname = any (current_schemas(false))`.execute(this.root);
    return Number(found.rows[0].n) > 0;
  }

  /** A round trip to the database, for readiness checks. */
  async ping(timeoutMs?: number): Promise<void> {
    await withDeadline(sql`select 1`.execute(this.root), timeoutMs, 'ping');
  }

  /** Why the store cannot take a write now, if a recent write failed for the store's sake and none succeeded since. */
  writeProblem(): string | undefined {
    return this.connection.health.writeProblem();
  }

  async close(): Promise<void> {
    await this.peers.close();
    await this.connection.close();
  }

  /**
   * Where the rate-limit tallies next to this store live (src/limits/sql.ts opens them): on
   * PostgreSQL the limit_tallies table of this database; on SQLite a file of their own in the
   * data directory. The store hands out the place and knows nothing of counting, so store/ never
   * imports limits/. Not through the change tracker: no cache holds a tally.
   */
  tallyPlace(): { engine: 'postgres'; db: Kysely<TallyDatabase> } | { engine: 'sqlite'; dataDir: string } {
    if (this.engine === 'sqlite') return { engine: 'sqlite', dataDir: this.connection.dataDir! };
    return { engine: 'postgres', db: this.root as unknown as Kysely<TallyDatabase> };
  }

  /**
   * What lies beneath the store, for src/store/diagnostics.ts alone (query plans, statistics and
   * bulk seeding for the bench and tests): only it holds the key, and no production module may
   * import it (the dependency rule diagnostics-only-for-bench-and-tests).
   */
  internals(key: DiagnosticsKey) {
    void key;
    return {
      /** The query builder of this store (inside a transaction, the transaction's). */
      db: this.db,
      /** The connection's own builder, outside any transaction. */
      root: this.root,
      engine: this.engine,
      dataDir: this.connection.dataDir,
      /** This store over another builder on the same connection (one that records its queries). */
      over: (db: Kysely<Database>) => new Store({ ...this.connection, db }, { changes: this.changes, peers: this.peers }),
    };
  }

  /** Runs fn atomically: all of its writes land, or none do. */
  async transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    const pending: Change[] = [];
    const result = await this.root
      .transaction()
      .execute((trx) => fn(new Store(this.connection, { changes: this.changes, peers: this.peers }, trx, pending)));
    this.announce(pending);
    return result;
  }

  // ---- users

  userById(id: number): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  userByUsername(username: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  userByEmail(email: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  }

  userByLegacyId(legacyId: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('legacy_id', '=', legacyId).executeTakeFirst();
  }

  /** Every user with one of these usernames, emails, ids or legacy ids, in one round trip (bulk import). */
  usersMatching(keys: { usernames: string[]; emails: string[]; ids: number[]; legacyIds?: string[] }): Promise<User[]> {
    const legacyIds = keys.legacyIds ?? [];
    if (!keys.usernames.length && !keys.emails.length && !keys.ids.length && !legacyIds.length) return Promise.resolve([]);
    return this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) =>
        eb.or([
          ...(keys.usernames.length ? [eb('username', 'in', keys.usernames)] : []),
          ...(keys.emails.length ? [eb('email', 'in', keys.emails)] : []),
          ...(keys.ids.length ? [eb('id', 'in', keys.ids)] : []),
          ...(legacyIds.length ? [eb('legacy_id', 'in', legacyIds)] : []),
        ]),
      )
      .execute();
  }

  /** Every user whose username or email skeleton (src/domain/skeleton.ts) is one of these. */
  usersLookingLike(skeletons: { usernames: string[]; emails: string[] }): Promise<User[]> {
    if (!skeletons.usernames.length && !skeletons.emails.length) return Promise.resolve([]);
    return this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) =>
        eb.or([
          ...(skeletons.usernames.length ? [eb('username_skeleton', 'in', skeletons.usernames)] : []),
          ...(skeletons.emails.length ? [eb('email_skeleton', 'in', skeletons.emails)] : []),
        ]),
      )
      .execute();
  }

  /**
   * After users were inserted with their own ids: PostgreSQL's identity sequence does not see
   * them, so move it past the largest id (SQLite's AUTOINCREMENT does this by itself).
   */
  async syncUserIds(): Promise<void> {
    if (this.engine !== 'postgres') return;
    // Never backwards, and past deleted ids too: an id once an account's is not handed out again.
    await sql`
      with seq as (select pg_get_serial_sequence('users', 'id')::regclass as name)
      select setval(seq.name, top.id)
      from seq, (select greatest((select max(id) from users), (select max(id) from deleted_user_ids)) as id) top
      where top.id > coalesce(pg_sequence_last_value(seq.name), 0)`.execute(this.db);
  }

  listUsers(options: { limit: number; afterId: number }): Promise<User[]> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('id', '>', options.afterId)
      .orderBy('id')
      .limit(options.limit)
      .execute();
  }

  /**
   * The columns of a user that are no credential (see src/store/credentials.ts for those): picked
   * one by one, so no wider object can smuggle a credential column through.
   */
  async updateProfile(id: number, patch: { created_at?: number; legacy_id?: string; updated_at: number }): Promise<void> {
    const { created_at, legacy_id, updated_at } = patch;
    const set = { updated_at, ...(created_at === undefined ? {} : { created_at }), ...(legacy_id === undefined ? {} : { legacy_id }) };
    try {
      await this.db.updateTable('users').set(set).where('id', '=', id).execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new UniqueViolation('legacy id already taken');
      throw error;
    }
  }

  /**
   * The query builder, for src/store/credentials.ts alone: only it holds the key, and only
   * src/core/credentials.ts may import it, so every credential write takes the one core path.
   */
  credentialWriter(key: CredentialKey): Kysely<Database> | Transaction<Database> {
    void key;
    return this.db;
  }

  /**
   * Inside a transaction: whether the user still has `stamp` and is not disabled, holding the
   * row until the transaction ends so no password change or disable can commit in between
   * (FOR SHARE on PostgreSQL; on SQLite the immediate transaction already holds the write lock).
   */
  async holdUserAt(id: number, stamp: number): Promise<boolean> {
    let query = this.db
      .selectFrom('users')
      .select('id')
      .where('id', '=', id)
      .where('security_stamp', '=', stamp)
      .where('status', '!=', 'disabled');
    if (this.engine === 'postgres') query = query.forShare();
    return (await query.executeTakeFirst()) !== undefined;
  }

  async deleteUser(id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  // ---- lazy migration (src/core/migration.ts): who awaits it, and names never to create again

  migrationOf(userId: number): Promise<UserMigration | undefined> {
    return this.db.selectFrom('user_migrations').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** The migration state of each of these users that has one (a page of an export). */
  async migrationsOf(userIds: number[]): Promise<UserMigration[]> {
    if (!userIds.length) return [];
    return this.db.selectFrom('user_migrations').selectAll().where('user_id', 'in', userIds).execute();
  }

  /** A legacy waiting user's names as stored before the identity key (migrations 0007, 0010). */
  legacyLoginNamesOf(userId: number): Promise<LegacyLoginNames | undefined> {
    return this.db.selectFrom('legacy_login_names').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** Names of legacy waiting users brought in by an import (a `migration: legacy` row). */
  async insertLegacyLoginNames(rows: LegacyLoginNames[]): Promise<void> {
    if (rows.length) await this.db.insertInto('legacy_login_names').values(rows).execute();
  }

  async insertMigrations(rows: UserMigration[]): Promise<void> {
    if (rows.length) await this.db.insertInto('user_migrations').values(rows).execute();
  }

  /** A re-import gives an awaiting user the identifiers the old service knows. */
  async setUpstreamIdentifiers(userId: number, upstream: { upstream_username: string; upstream_email: string | null }): Promise<void> {
    await this.db.updateTable('user_migrations').set(upstream).where('user_id', '=', userId).where('state', '=', 'awaiting').execute();
  }

  /** Ends a user's wait; false when they were not awaiting migration (any more). */
  async markMigrated(userId: number): Promise<boolean> {
    const result = await this.db
      .updateTable('user_migrations')
      .set({ state: 'migrated' })
      .where('user_id', '=', userId)
      .where('state', '=', 'awaiting')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** A deleted account's id: no other account may ever hold it (migration 0011). */
  async retireUserId(id: number, now: number): Promise<void> {
    await this.db.insertInto('deleted_user_ids').values({ id, deleted_at: now }).onConflict((oc) => oc.column('id').doNothing()).execute();
  }

  /** Which of these ids belonged to a deleted account. */
  async retiredUserIds(ids: number[]): Promise<Set<number>> {
    if (!ids.length) return new Set();
    const rows = await this.db.selectFrom('deleted_user_ids').select('id').where('id', 'in', ids).execute();
    return new Set(rows.map((r) => Number(r.id)));
  }

  async recordDeletedLogins(keys: string[], now: number): Promise<void> {
    if (!keys.length) return;
    await this.db
      .insertInto('deleted_logins')
      .values(keys.map((login_key) => ({ login_key, deleted_at: now })))
      .onConflict((oc) => oc.column('login_key').doUpdateSet({ deleted_at: now }))
      .execute();
  }

  async anyDeletedLogin(keys: string[]): Promise<boolean> {
    if (!keys.length) return false;
    return (await this.db.selectFrom('deleted_logins').select('login_key').where('login_key', 'in', keys).executeTakeFirst()) !== undefined;
  }

  // ---- identity collisions found when stored names were rekeyed (migration 0007)

  identityCollisions(): Promise<IdentityCollision[]> {
    return this.db.selectFrom('identity_collisions').selectAll().orderBy('key').orderBy('user_id').execute();
  }

  collisionsOf(userId: number): Promise<IdentityCollision[]> {
    return this.db.selectFrom('identity_collisions').selectAll().where('user_id', '=', userId).execute();
  }

  /** Accounts found looking like an older one when skeletons were added (migration 0011). */
  lookAlikeAccounts(): Promise<LookAlikeAccount[]> {
    return this.db.selectFrom('look_alike_accounts').selectAll().orderBy('like_user_id').orderBy('user_id').execute();
  }

  /** Whether another user than `userId` still waits to be settled under this key. */
  async keyClaimedByOther(field: IdentityCollision['field'], key: string, userId: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('identity_collisions')
      .select('user_id')
      .where('field', '=', field)
      .where('key', '=', key)
      .where('user_id', '!=', userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The keys unsettled collisions hold, for accounts other than `exceptUserId` (few: the table only shrinks). */
  async collidedKeys(exceptUserId?: number): Promise<Pick<IdentityCollision, 'field' | 'key'>[]> {
    let query = this.db.selectFrom('identity_collisions').select(['field', 'key']).distinct();
    if (exceptUserId !== undefined) query = query.where('user_id', '!=', exceptUserId);
    return query.execute();
  }

  async clearCollision(userId: number, field: IdentityCollision['field']): Promise<void> {
    await this.db.deleteFrom('identity_collisions').where('user_id', '=', userId).where('field', '=', field).execute();
  }

  // ---- sessions

  async insertSession(session: Session): Promise<void> {
    await this.db.insertInto('sessions').values(session).execute();
  }

  sessionById(id: string): Promise<Session | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * A session and its user in one round trip: online verification and refresh do this on
   * every call, and on PostgreSQL a round trip is most of their cost.
   */
  async sessionWithUser(by: { id: string } | { refreshHash: string }): Promise<{ session: Session; user: User } | undefined> {
    const lookup = 'id' in by ? sessionWithUserById : sessionWithUserByRefreshHash;
    const row = (await lookup(this.db, this.engine, 'id' in by ? by.id : by.refreshHash)).rows[0];
    if (!row) return undefined;
    const { u_username, u_email, u_password_hash, u_status, u_managed_by, u_created_at, u_updated_at, u_password_changed_at, u_security_stamp, u_legacy_id, u_username_skeleton, u_email_skeleton, ...session } = row;
    return {
      session,
      user: {
        id: session.user_id,
        username: u_username,
        email: u_email,
        password_hash: u_password_hash,
        status: u_status,
        managed_by: u_managed_by,
        created_at: u_created_at,
        updated_at: u_updated_at,
        password_changed_at: u_password_changed_at,
        security_stamp: u_security_stamp,
        legacy_id: u_legacy_id,
        username_skeleton: u_username_skeleton,
        email_skeleton: u_email_skeleton,
      },
    };
  }

  /** Counts one more refresh unless the cap is reached; atomic, so racing refreshes cannot pass it. */
  async takeRefresh(id: string, limit: number, now: number): Promise<boolean> {
    const result = await countRefresh(this.db, this.engine, id, limit, now);
    return Number(result.numAffectedRows) === 1;
  }

  async revokeSession(id: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async revokeUserSessions(userId: number, now: number, exceptSessionId?: string): Promise<number> {
    let query = this.db
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (exceptSessionId) query = query.where('id', '!=', exceptSessionId);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** The user's sessions, newest first, without their refresh token hashes. */
  sessionsOf(userId: number, limit: number) {
    return this.db
      .selectFrom('sessions')
      .select(['id', 'dialect', 'refresh_count', 'created_at', 'expires_at', 'revoked_at', 'last_used_at', 'ip', 'user_agent'])
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
  }

  // ---- one-time codes

  async insertCode(code: OneTimeCode): Promise<void> {
    await this.db.insertInto('one_time_codes').values(code).execute();
  }

  /**
   * Kills the user's live codes of this purpose (of every purpose when none is given), all of
   * them or, for one purpose, all but the newest `keepNewest`.
   */
  async retireCodes(userId: number, purpose: CodePurpose | undefined, now: number, keepNewest = 0): Promise<void> {
    let query = this.db
      .updateTable('one_time_codes')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('used_at', 'is', null);
    if (purpose) query = query.where('purpose', '=', purpose);
    if (purpose && keepNewest > 0) {
      query = query.where('id', 'not in', (eb) =>
        eb
          .selectFrom('one_time_codes')
          .select('id')
          .where('user_id', '=', userId)
          .where('purpose', '=', purpose)
          .where('used_at', 'is', null)
          .orderBy('created_at', 'desc')
          .limit(keepNewest),
      );
    }
    await query.execute();
  }

  /** The user's unused, unexpired codes of this purpose, newest first. */
  liveCodes(userId: number, purpose: CodePurpose, now: number, limit: number): Promise<OneTimeCode[]> {
    return this.db
      .selectFrom('one_time_codes')
      .selectAll()
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
  }

  codeByHash(purpose: CodePurpose, hash: string): Promise<OneTimeCode | undefined> {
    return this.db
      .selectFrom('one_time_codes')
      .selectAll()
      .where('purpose', '=', purpose)
      .where('code_hash', '=', hash)
      .executeTakeFirst();
  }

  /**
   * Spends one of a code's attempts before the guess is compared, so concurrent guesses cannot
   * all slip in under the limit; false when none are left or the code is used.
   */
  async takeCodeAttempt(id: string, limit: number): Promise<boolean> {
    const result = await this.db
      .updateTable('one_time_codes')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .where('attempts', '<', limit)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Marks a code used; false when someone else used it first. */
  async consumeCode(id: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('one_time_codes')
      .set({ used_at: now })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteExpired(cutoffs: { codesBefore: number; sessionsBefore: number; auditBefore: number }): Promise<void> {
    await this.db.deleteFrom('one_time_codes').where('expires_at', '<', cutoffs.codesBefore).execute();
    await this.db.deleteFrom('sessions').where('expires_at', '<', cutoffs.sessionsBefore).execute();
    await this.db.deleteFrom('audit_events').where('at', '<', cutoffs.auditBefore).execute();
  }

  // ---- signing keys

  listKeys(): Promise<SigningKeyRow[]> {
    return this.db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').execute();
  }

  async insertKey(key: SigningKeyRow): Promise<void> {
    await this.db.insertInto('signing_keys').values(key).execute();
  }

  async retireKeys(now: number, exceptKid: string): Promise<void> {
    await this.db
      .updateTable('signing_keys')
      .set({ retired_at: now })
      .where('kid', '!=', exceptKid)
      .where('retired_at', 'is', null)
      .execute();
  }

  async deleteKey(kid: string): Promise<boolean> {
    const result = await this.db.deleteFrom('signing_keys').where('kid', '=', kid).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async deleteKeysRetiredBefore(cutoff: number): Promise<number> {
    const result = await this.db.deleteFrom('signing_keys').where('retired_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // ---- the deployment

  /** Sets a deployment-wide value unless one is set already; returns the value that holds. */
  async settleSetting(name: string, value: string): Promise<string> {
    await this.db.insertInto('instance_settings').values({ name, value }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const row = await this.db.selectFrom('instance_settings').select('value').where('name', '=', name).executeTakeFirstOrThrow();
    return row.value;
  }

  // ---- audit

  async audit(event: { at: number; userId: number | null; kind: string; ip?: string | null; detail?: string | null }) {
    await this.db
      .insertInto('audit_events')
      .values({ at: event.at, user_id: event.userId, kind: event.kind, ip: event.ip ?? null, detail: event.detail ?? null })
      .execute();
  }

  auditOf(userId: number, limit: number) {
    return this.db
      .selectFrom('audit_events')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }
}
