// Users in and out in bulk: import from another system (with its password hashes, plain passwords
// or none), and export in the same format. Rows are validated one by one and written in batches,
// each batch in one transaction; the same file imported twice changes nothing the second time.
import type { User, UserStatus } from '../store/schema.ts';
import { IdOutOfRange, UniqueViolation } from '../store/store.ts';
import { parseUserId } from './ids.ts';
import { LEGACY_ID_RULE, parseLegacyId } from './legacy-ids.ts';
import type { CoreContext } from './context.ts';
import { AuthError } from './errors.ts';
import { parseHash } from './hash-formats.ts';
import { checkPasswordPolicy, hashPassword, isStoredPassword } from './passwords.ts';
import { unchangedByRekey } from '../store/migrations.ts';
import { checkIdentity, lookAlikeReason, normalizeLogin, skeletonsOf } from './users.ts';
import { createUsers, Credentials, type CredentialChange, type UserToCreate } from './credentials.ts';

/** The fields of an import or export row; anything else in a row is refused. */
export const TRANSFER_FIELDS = ['id', 'username', 'email', 'password_hash', 'password', 'status', 'created_at', 'legacy_id', 'managed_by', 'migration'] as const;
const STATUSES: readonly UserStatus[] = ['active', 'disabled', 'force_change_password'];
const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** One row as read from a file: its fields, or why it could not be read. */
export interface ImportRecord {
  line: number;
  fields?: unknown;
  error?: string;
}

export interface ImportReject {
  line: number;
  reason: string;
}

export interface ImportCounts {
  imported: number;
  updated: number;
  skipped: number;
  rejected: number;
}

export interface ImportOptions {
  /** Update users that already exist (by username) instead of skipping them. */
  update?: boolean;
  batchSize?: number;
  onReject?(reject: ImportReject): void;
  /** After each batch is written. */
  onProgress?(counts: ImportCounts): void;
}

export interface ExportRow {
  id: number;
  username: string;
  email: string | null;
  status: UserStatus;
  created_at: string;
  /** Only `external`: a user who signs in elsewhere (SSO), never migrated; absent for the others. */
  managed_by?: 'external';
  password_hash?: string;
  legacy_id?: string;
  /**
   * Only `legacy`: awaiting migration since before Latchkey kept the identifier as the old service
   * knows it; the username and email are the stored keys, not that identifier.
   */
  migration?: 'legacy';
}

type Secret = { kind: 'hash'; hash: string } | { kind: 'password'; password: string } | { kind: 'none' };

interface ImportRow {
  line: number;
  id?: number;
  username: string;
  /** undefined: not given (an update keeps the current one). */
  email?: string;
  secret: Secret;
  status?: UserStatus;
  createdAt?: number;
  /** The old system's id, when it cannot be the id here (src/core/legacy-ids.ts). */
  legacyId?: string;
  /** `managed_by: external`: signs in elsewhere (SSO); no password here, never migrated. */
  external: boolean;
  /** The identifiers as the row gave them (case and form kept): what the old service knows. */
  upstream: { upstream_username: string; upstream_email: string | null };
  /**
   * `migration: legacy`: awaiting migration, but the old service's identifier is not known (the
   * row's names are stored keys): kept legacy here, never asked about by the row's names.
   */
  legacy: boolean;
}

class RowRejected extends Error {}

/** An update of an existing user: its credentials (through the one credential path) and its creation time. */
interface Update {
  user: User;
  credentials?: CredentialChange;
  createdAt?: number;
  legacyId?: string;
}

function parseTime(value: string): number {
  const match = ISO_TIME.exec(value.trim());
  if (!match) throw new RowRejected('created_at must be an ISO 8601 time');
  const [, date, time = '00:00:00', fraction = '', zone = 'Z'] = match;
  // Milliseconds are what we keep; a time without a zone is UTC.
  const ms = Date.parse(`${date}T${time}${fraction.slice(0, 4)}${zone.toUpperCase()}`);
  if (!Number.isFinite(ms)) throw new RowRejected('created_at must be an ISO 8601 time');
  return ms;
}

export class UserTransfer {
  private readonly credentials: Credentials;

  constructor(private readonly ctx: CoreContext) {
    this.credentials = new Credentials(ctx);
  }

  /** Reads, checks and normalizes one row; throws RowRejected with the reason. */
  private validate(record: ImportRecord): ImportRow {
    if (record.error) throw new RowRejected(record.error);
    const fields = record.fields;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new RowRejected('a row must be an object');
    const unknown = Object.keys(fields).filter((key) => !(TRANSFER_FIELDS as readonly string[]).includes(key));
    if (unknown.length) throw new RowRejected(`unknown field: ${unknown[0]}`);
    const get = (key: (typeof TRANSFER_FIELDS)[number], numeric = false): string | undefined => {
      const value = (fields as Record<string, unknown>)[key];
      if (value === undefined || value === null || value === '') return undefined;
      if (typeof value === 'string') return value;
      if (numeric && typeof value === 'number') return String(value);
      throw new RowRejected(`${key} must be a string`);
    };

    const rawUsername = get('username');
    if (rawUsername === undefined) throw new RowRejected('username is required');
    let identity: { username: string; email: string | null };
    try {
      identity = checkIdentity(rawUsername, get('email'));
    } catch (error) {
      throw new RowRejected((error as Error).message);
    }

    const idText = get('id', true);
    let id: number | undefined;
    if (idText !== undefined) {
      id = parseUserId(idText);
      // Tokens carry ids as JSON numbers, exact only up to 2^53 - 1: a larger id would be a neighbour's.
      if (id === undefined) {
        throw new RowRejected(`id must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}; to keep another system's id, give it as legacy_id and leave id out`);
      }
    }
    const legacyText = get('legacy_id');
    const legacyId = legacyText === undefined ? undefined : parseLegacyId(legacyText);
    if (legacyText !== undefined && legacyId === undefined) throw new RowRejected(`legacy_id must be ${LEGACY_ID_RULE}`);

    const passwordHash = get('password_hash');
    const password = get('password');
    let secret: Secret = { kind: 'none' };
    if (passwordHash !== undefined && password !== undefined) throw new RowRejected('give password_hash or password, not both');
    if (passwordHash !== undefined) {
      const known = parseHash(passwordHash);
      if (!known) throw new RowRejected('password_hash is in an unknown or unsupported format');
      const { maxCost } = this.ctx.hashBudget;
      if (known.cost > maxCost) {
        throw new RowRejected(
          `password_hash (${known.format}) costs about ${Math.round(known.cost)} default argon2id checks per login, over LATCHKEY_FOREIGN_HASH_MAX_COST (${maxCost})`,
        );
      }
      secret = { kind: 'hash', hash: passwordHash };
    } else if (password !== undefined) {
      try {
        checkPasswordPolicy(password, { minLength: this.ctx.settings.passwordMinLength }, identity.username);
      } catch (error) {
        throw new RowRejected(error instanceof AuthError ? error.message : 'password is not acceptable');
      }
      secret = { kind: 'password', password };
    }

    const status = get('status') as UserStatus | undefined;
    if (status !== undefined && !STATUSES.includes(status)) throw new RowRejected(`status must be one of ${STATUSES.join(', ')}`);
    if (status === 'force_change_password' && secret.kind === 'none') {
      throw new RowRejected('a user without a password cannot be made to change it');
    }
    const managedBy = get('managed_by');
    if (managedBy !== undefined && managedBy !== 'local' && managedBy !== 'external') throw new RowRejected('managed_by must be local or external');
    const external = managedBy === 'external';
    if (external && secret.kind !== 'none') throw new RowRejected('a user managed externally has no password here');
    const migration = get('migration');
    if (migration !== undefined && migration !== 'legacy') throw new RowRejected('migration must be legacy');
    const legacy = migration === 'legacy';
    if (legacy && (external || secret.kind !== 'none')) throw new RowRejected('migration legacy is for a user awaiting migration: no password, password_hash or managed_by external');
    const createdAt = get('created_at');
    return {
      line: record.line,
      id,
      username: identity.username,
      email: identity.email ?? undefined,
      secret,
      status,
      createdAt: createdAt === undefined ? undefined : parseTime(createdAt),
      legacyId,
      external,
      upstream: { upstream_username: rawUsername, upstream_email: get('email') ?? null },
      legacy,
    };
  }

  /**
   * Imports users from `records` (streamed: memory stays bounded by the batch size). A user who
   * exists already (by username) is skipped, or with `update` updated; a row that cannot go in is
   * reported to onReject with its line and reason while the rest go in.
   */
  async importUsers(records: AsyncIterable<ImportRecord>, options: ImportOptions = {}): Promise<ImportCounts> {
    const counts: ImportCounts = { imported: 0, updated: 0, skipped: 0, rejected: 0 };
    const batchSize = options.batchSize ?? 1000;
    const reject = (line: number, reason: string) => {
      counts.rejected++;
      options.onReject?.({ line, reason });
    };
    let batch: ImportRow[] = [];
    const keys = new Set<string>();
    let sawId = false;
    const flush = async () => {
      if (!batch.length) return;
      const rows = batch;
      batch = [];
      keys.clear();
      await this.writeBatch(rows, options.update ?? false, counts, reject);
      options.onProgress?.({ ...counts });
    };

    try {
      const reader = records[Symbol.asyncIterator]();
      for (;;) {
        let next: IteratorResult<ImportRecord>;
        try {
          next = await reader.next();
        } catch (error) {
          // The input broke off (a record too long to read, a body over its limit): the rows
          // above that point go in, so the answer can say exactly where it stopped.
          await flush();
          throw error;
        }
        if (next.done) break;
        const record = next.value;
        let row: ImportRow;
        try {
          row = this.validate(record);
        } catch (error) {
          if (!(error instanceof RowRejected)) throw error;
          reject(record.line, error.message);
          continue;
        }
        // A row about the same user, email or id as one waiting in this batch sees that one written first.
        // Look-alikes too (same skeleton), so the later one is refused by name rather than by a conflict.
        const skeletons = skeletonsOf({ username: row.username, email: row.email ?? null });
        const rowKeys = [
          `u:${row.username}`,
          ...(row.email ? [`e:${row.email}`] : []),
          ...(row.id ? [`i:${row.id}`] : []),
          ...(row.legacyId ? [`l:${row.legacyId}`] : []),
          ...skeletons.usernames.map((s) => `s:${s}`),
          ...skeletons.emails.map((s) => `t:${s}`),
        ];
        if (rowKeys.some((key) => keys.has(key))) await flush();
        rowKeys.forEach((key) => keys.add(key));
        sawId ||= row.id !== undefined;
        batch.push(row);
        if (batch.length >= batchSize) await flush();
      }
      await flush();
    } finally {
      if (sawId) await this.ctx.store.syncUserIds();
    }
    await this.ctx.audit.record({ kind: 'users_imported', userId: null, detail: JSON.stringify(counts) });
    return counts;
  }

  private async writeBatch(rows: ImportRow[], update: boolean, counts: ImportCounts, reject: (line: number, reason: string) => void) {
    const store = this.ctx.store;
    const found = await store.usersMatching({
      usernames: rows.map((r) => r.username),
      emails: rows.flatMap((r) => (r.email ? [r.email] : [])),
      ids: rows.flatMap((r) => (r.id ? [r.id] : [])),
      legacyIds: rows.flatMap((r) => (r.legacyId ? [r.legacyId] : [])),
    });
    const byUsername = new Map(found.map((u) => [u.username, u]));
    const byEmail = new Map(found.filter((u) => u.email).map((u) => [u.email!, u]));
    const byId = new Map(found.map((u) => [u.id, u]));
    const byLegacyId = new Map(found.filter((u) => u.legacy_id).map((u) => [u.legacy_id!, u]));
    const ids = rows.flatMap((r) => (r.id ? [r.id] : []));
    const retired = await store.retiredUserIds(ids);
    const skeletons = rows.map((r) => skeletonsOf({ username: r.username, email: r.email ?? null }));
    const lookingLike = await store.usersLookingLike({ usernames: skeletons.flatMap((s) => s.usernames), emails: skeletons.flatMap((s) => s.emails) });
    const now = this.ctx.clock();

    type Plan = { insert: UserToCreate } | { update: Update } | { reject: string } | 'skip';
    // A row without a password imports a user awaiting lazy migration (LATCHKEY_MIGRATE_FROM), to
    // be asked about by the identifiers as this row spells them; re-importing one that still
    // waits (imported before those were kept) gives it them.
    const awaiting: ImportRow[] = [];
    const reidentified: { userId: number; upstream: ImportRow['upstream'] }[] = [];
    const plan = async (row: ImportRow): Promise<Plan> => {
      // A deleted account's id is its `sub`, perhaps still on file at a relying party: never another's.
      if (row.id && retired.has(row.id)) return { reject: `id ${row.id} belonged to a deleted user and is never given to another account` };
      const existing = byUsername.get(row.username);
      const idHolder = row.id ? byId.get(row.id) : undefined;
      const emailHolder = row.email ? byEmail.get(row.email) : undefined;
      if (idHolder && idHolder !== existing) return { reject: `id ${row.id} belongs to another user` };
      if (emailHolder && emailHolder !== existing) return { reject: 'email belongs to another user' };
      const legacyHolder = row.legacyId ? byLegacyId.get(row.legacyId) : undefined;
      if (legacyHolder && legacyHolder !== existing) return { reject: 'legacy_id belongs to another user' };
      const lookAlike = lookAlikeReason(lookingLike, { username: row.username, email: row.email ?? existing?.email ?? null }, existing?.id);
      if (lookAlike) return { reject: lookAlike };
      if (!existing) {
        // Without a password: awaiting migration, unless the row says the user signs in elsewhere.
        if (row.secret.kind === 'none' && !row.external) awaiting.push(row);
        return { insert: await this.newUser(row, now) };
      }
      // An account holds this name's key: the row is about it only when it says so, by its id or
      // by the very name stored (or imported); `ａｌｉｃｅ` or `ALICE` is never merged into `alice`.
      if (!(await this.isSameAccount(existing, row))) {
        return { reject: `username is already taken under the identity key by user ${existing.id}; give that user's id to update it` };
      }
      if (!update) return 'skip';
      if (row.id !== undefined && row.id !== existing.id) {
        return { reject: `id ${row.id} does not match the existing user's id ${existing.id}` };
      }
      if (row.external) {
        // Only a user who signs in elsewhere already stays so; making one external is not an import's.
        const migration = existing.password_hash === null ? await this.ctx.store.migrationOf(existing.id) : undefined;
        if (existing.password_hash !== null || migration?.state === 'awaiting') {
          return { reject: `managed_by external, but user ${existing.id} has a password here or awaits migration` };
        }
      } else if (row.secret.kind === 'none' && !row.legacy && existing.password_hash === null) reidentified.push({ userId: existing.id, upstream: row.upstream });
      const change = await this.changes(existing, row, now);
      return change ? { update: change } : 'skip';
    };
    // Planned together (plain passwords hash in parallel on the thread pool), written in file order.
    const plans = await Promise.all(rows.map(plan));
    const inserts = plans.flatMap((p) => (typeof p === 'object' && 'insert' in p ? [p.insert] : []));
    const updates = plans.flatMap((p) => (typeof p === 'object' && 'update' in p ? [p.update] : []));

    try {
      await store.transaction(async (tx) => {
        await createUsers(tx, inserts);
        if (awaiting.length) {
          const ids = new Map((await tx.usersMatching({ usernames: awaiting.map((r) => r.username), emails: [], ids: [] })).map((u) => [u.username, u.id]));
          await tx.insertMigrations(
            awaiting.map((r) => ({ user_id: ids.get(r.username)!, state: 'awaiting' as const, ...(r.legacy ? { upstream_username: null, upstream_email: null } : r.upstream) })),
          );
          // A legacy row's names are keys, not what the old service knows: as migration 0010, a
          // name is kept only where no other name stored before could have become it; the
          // others wait for a re-import with the identifier.
          await tx.insertLegacyLoginNames(
            awaiting
              .filter((r) => r.legacy)
              .map((r) => ({ user_id: ids.get(r.username)!, username: unchangedByRekey(r.username), email: r.email === undefined ? null : unchangedByRekey(r.email) })),
          );
        }
        for (const { userId, upstream } of reidentified) await tx.setUpstreamIdentifiers(userId, upstream);
        for (const { user, credentials, createdAt, legacyId } of updates) {
          // A new password, status or email goes through the one credential path: the stamp
          // moves, and every session, code, link and challenge of the old credential ends.
          if (credentials) await this.credentials.change(user.id, credentials, { kind: 'user_updated_by_import', overridesDisabled: true, tx });
          if (createdAt !== undefined || legacyId !== undefined) await tx.updateProfile(user.id, { created_at: createdAt, legacy_id: legacyId, updated_at: now });
        }
      });
    } catch (error) {
      if (!(error instanceof UniqueViolation) && !(error instanceof IdOutOfRange)) throw error;
      // Someone else created one of these users meanwhile, or no id is left: go row by row so only that one is refused.
      if (rows.length === 1) return reject(rows[0].line, error instanceof IdOutOfRange ? 'no user id is left at or below 2^53 - 1' : 'username, email, id or legacy_id already taken');
      for (const row of rows) await this.writeBatch([row], update, counts, reject);
      return;
    }
    counts.imported += inserts.length;
    counts.updated += updates.length;
    plans.forEach((p, i) => {
      if (p === 'skip') counts.skipped++;
      else if ('reject' in p) reject(rows[i].line, p.reject);
    });
  }

  private async isSameAccount(existing: User, row: ImportRow): Promise<boolean> {
    if (row.id !== undefined) return row.id === existing.id;
    const named = row.upstream.upstream_username;
    if (named === existing.username) return true;
    if (existing.password_hash !== null) return false;
    // A user imported to migrate, by the name as imported. One imported before that was kept has
    // only its key, which `ａｌｉｃｅ` or `ALICE` (another person at an old service that tells them
    // apart) shares: such a row is that user only by its id or by the very name stored.
    const migration = await this.ctx.store.migrationOf(existing.id);
    return migration?.state === 'awaiting' && migration.upstream_username === named;
  }

  private async newUser(row: ImportRow, now: number): Promise<UserToCreate> {
    const { secret } = row;
    const status = row.status ?? 'active';
    return {
      ...(row.id !== undefined ? { id: row.id } : {}),
      username: row.username,
      email: row.email ?? null,
      password_hash: secret.kind === 'hash' ? secret.hash : secret.kind === 'password' ? await hashPassword(secret.password) : null,
      status,
      // Without a password here, the password lives elsewhere: an external user (see LATCHKEY_MIGRATE_FROM).
      managed_by: secret.kind === 'none' ? 'external' : 'local',
      created_at: row.createdAt ?? now,
      updated_at: now,
      legacy_id: row.legacyId ?? null,
      password_changed_at: secret.kind === 'none' || status === 'force_change_password' ? null : now,
    };
  }

  /** What an update changes, or undefined when the row says what the store already holds. */
  private async changes(user: User, row: ImportRow, now: number): Promise<Update | undefined> {
    const credentials: CredentialChange = {};
    if (row.email !== undefined && row.email !== user.email) credentials.email = row.email;
    if (row.status !== undefined && row.status !== user.status) credentials.status = row.status;
    const { secret } = row;
    let newHash: string | undefined;
    if (secret.kind === 'hash' && secret.hash !== user.password_hash) newHash = secret.hash;
    if (secret.kind === 'password' && !(await isStoredPassword(user.password_hash, secret.password, this.ctx.hashBudget.maxCost))) {
      newHash = await hashPassword(secret.password);
    }
    if (newHash !== undefined) {
      credentials.password_hash = newHash;
      credentials.managed_by = 'local';
      credentials.password_changed_at = (row.status ?? user.status) === 'force_change_password' ? null : now;
    }
    const createdAt = row.createdAt !== undefined && row.createdAt !== user.created_at ? row.createdAt : undefined;
    const legacyId = row.legacyId !== undefined && row.legacyId !== user.legacy_id ? row.legacyId : undefined;
    const changesCredentials = Object.keys(credentials).length > 0;
    if (!changesCredentials && createdAt === undefined && legacyId === undefined) return undefined;
    return { user, credentials: changesCredentials ? credentials : undefined, createdAt, legacyId };
  }

  /** Every user, by id, in the import format; hashes only when asked for. */
  async *exportUsers(options: { withHashes?: boolean } = {}): AsyncGenerator<ExportRow> {
    let afterId = 0;
    for (;;) {
      const page = await this.ctx.store.listUsers({ limit: 1000, afterId });
      if (!page.length) return;
      // A user without a password is either awaiting migration or signs in elsewhere (SSO); the
      // row must say which, or the import elsewhere makes the SSO user one the old service's
      // password for the same name completes.
      const waiting = await this.ctx.store.migrationsOf(page.filter((u) => u.managed_by === 'external').map((u) => u.id));
      const migrating = new Map(waiting.filter((m) => m.state === 'awaiting').map((m) => [m.user_id, m]));
      for (const user of page) {
        // A user awaiting migration goes out with the identifiers the old service knows (as
        // imported, case kept), which the import elsewhere keeps: the stored key would be asked
        // about there instead, and an exact-matching old service's `alice` complete our `Alice`.
        const upstream = migrating.get(user.id);
        // One awaiting since before that identifier was kept has only its key: the row says so,
        // or the import elsewhere would take the key as the identifier (`alice` asked about for `Alice`).
        const legacy = upstream !== undefined && upstream.upstream_username === null;
        const asImported = (value: string | null | undefined, stored: string | null) =>
          value && stored !== null && normalizeLogin(value) === stored ? value : stored;
        yield {
          id: user.id,
          username: asImported(upstream?.upstream_username, user.username)!,
          email: asImported(upstream?.upstream_email, user.email),
          status: user.status,
          created_at: new Date(user.created_at).toISOString(),
          ...(user.managed_by === 'external' && !migrating.has(user.id) ? { managed_by: 'external' as const } : {}),
          ...(options.withHashes && user.password_hash ? { password_hash: user.password_hash } : {}),
          ...(user.legacy_id ? { legacy_id: user.legacy_id } : {}),
          ...(legacy ? { migration: 'legacy' as const } : {}),
        };
      }
      afterId = page[page.length - 1].id;
    }
  }
}
