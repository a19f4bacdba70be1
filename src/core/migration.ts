// Lazy migration from a live service (LATCHKEY_MIGRATE_FROM). Only two kinds of login reach the
// old service:
// - a user imported as awaiting migration (an import row without a password), asked about by the
//   identifier the old service knows, exactly as imported (case and form kept): a case-sensitive
//   old service's "alice" must never confirm a login as our imported "Alice";
// - a name no account here holds under the identity key, and no deleted account held (for a
//   Cognito-style source with no export): the user is created, marked as migrated.
// Never an external (SSO) user, a user with a password, or a deleted one. Once migrated, the old
// service is never asked about the user again.
import type { User } from '../store/schema.ts';
import { IdOutOfRange, UniqueViolation } from '../store/store.ts';
import type { CoreContext } from './context.ts';
import { hashPassword } from './passwords.ts';
import { checkIdentity, normalizeLogin, skeletonsOf } from './users.ts';
import { createUser, Credentials } from './credentials.ts';

export interface UpstreamIdentity {
  username?: string;
  email?: string;
}

/** The old service, as the core sees it (src/upstream/old-service.ts speaks its HTTP). */
export interface UpstreamLogin {
  /** What the old service's login asks for. */
  readonly loginBy: 'username' | 'email';
  /**
   * The operator declared that the old service compares names case-insensitively
   * (LATCHKEY_MIGRATE_CASE_INSENSITIVE): users imported before the original identifier was kept
   * may then be asked about by their stored name. Otherwise they wait for a re-import.
   */
  readonly caseInsensitive: boolean;
  /**
   * Who the old service confirms for these credentials; undefined for any refusal or failure.
   * `clientIp` is the address the login came from, passed on so the old service's own limits
   * count the client, not Latchkey (which would otherwise be one address for every client).
   */
  login(identifier: string, password: string, clientIp?: string): Promise<UpstreamIdentity | undefined>;
}

export class LazyMigration {
  constructor(
    private readonly ctx: CoreContext,
    private readonly upstream: UpstreamLogin,
  ) {}

  /** Whether a login for this (possibly absent) local user may go to the old service; migrate decides. */
  applies(local: User | undefined): boolean {
    return !local || (local.password_hash === null && local.status !== 'disabled');
  }

  /**
   * Asks the old service; on a yes, returns the local user now holding a password (the awaiting
   * one, or one created), else undefined. The caller still checks the password against what it
   * returns, so a login that lost a race to migrate the same user is decided by the stored hash.
   * `typed` is the name as the client typed it, `key` its identity key, found `by`.
   */
  async migrate(typed: string, key: string, by: 'username' | 'email', local: User | undefined, password: string, clientIp?: string): Promise<User | undefined> {
    return local ? this.complete(local, typed, by, password, clientIp) : this.create(typed, key, by, password, clientIp);
  }

  private async complete(local: User, typed: string, by: 'username' | 'email', password: string, clientIp?: string): Promise<User | undefined> {
    const { store } = this.ctx;
    if (local.password_hash !== null || local.status === 'disabled') return undefined;
    const awaiting = await store.migrationOf(local.id);
    if (awaiting?.state !== 'awaiting') return undefined; // external (SSO), or migrated already
    const byEmail = this.upstream.loginBy === 'email';
    let identifier = byEmail ? awaiting.upstream_email : awaiting.upstream_username;
    // Every import since 0006 keeps the username as imported; without it, the user was imported
    // before, and has only the name as stored then.
    if (awaiting.upstream_username === null) identifier = await this.legacyIdentifier(local.id, typed, by);
    if (!identifier) return undefined;
    if (!(await this.upstream.login(identifier, password, clientIp))) return undefined;
    const passwordHash = await hashPassword(password);
    const now = this.ctx.clock();
    await store.transaction(async (tx) => {
      if (!(await tx.markMigrated(local.id))) return; // a racing login migrated them first
      // Through the one credential path: the stamp moves and anything issued before ends.
      await new Credentials(this.ctx).change(
        local.id,
        { password_hash: passwordHash, managed_by: 'local', password_changed_at: now },
        { kind: 'user_migrated', onlyWithoutPassword: true, tx },
      );
    });
    // Whoever won, the stored password now decides, as for anyone.
    return store.userById(local.id);
  }

  private async create(typed: string, key: string, by: 'username' | 'email', password: string, clientIp?: string): Promise<User | undefined> {
    // Only by the identifier the old service asks for, as the client typed it (never re-cased).
    if (by !== this.upstream.loginBy) return undefined;
    // The old service may hold `alice` and `Alice` (or `ａｌｉｃｅ`) as two people, one key here:
    // only the form that stands for the key is created, or the first of them to log in would hold
    // the other's account for good. Another form gets the ordinary failed login.
    if (!this.standsForItsKey(typed)) return undefined;
    if (await this.ctx.store.anyDeletedLogin([key])) return undefined;
    const identity = await this.upstream.login(typed, password, clientIp);
    if (!identity) return undefined;
    // The name typed is the one the old service just confirmed; the other comes from its answer, if usable.
    const usable = (username: string, email: string | undefined) => {
      try {
        return checkIdentity(username, email);
      } catch {
        return undefined;
      }
    };
    // A claimed other name is taken only in the form that stands for its key, for the same reason.
    const claimed = (value: string | undefined) => (value !== undefined && this.standsForItsKey(value) ? value : undefined);
    const names =
      by === 'username'
        ? (usable(typed, claimed(identity.email)) ?? usable(typed, undefined))
        : (usable(claimed(identity.username) ?? typed, typed) ?? usable(typed, typed));
    if (!names) return undefined;
    const passwordHash = await hashPassword(password);
    const now = this.ctx.clock();
    const holder = () => (by === 'email' ? this.ctx.store.userByEmail(key) : this.ctx.store.userByUsername(key));
    try {
      return await this.ctx.store.transaction(async (tx) => {
        if (await tx.anyDeletedLogin([names.username, ...(names.email ? [names.email] : [])])) return undefined;
        // A claim of the old service that someone here holds already is dropped, not a failure:
        // an unverified address squatted here must not keep the real user from migrating.
        // So is one that looks like another account's (the same UTS #39 skeleton).
        const emailTaken =
          names.email !== null &&
          ((await tx.userByEmail(names.email)) !== undefined || (await tx.usersLookingLike({ usernames: [], emails: skeletonsOf(names).emails })).length > 0);
        const email = emailTaken ? null : names.email;
        if (by === 'email' && email === null) return undefined; // the login's own key was taken meanwhile
        if (await tx.userByUsername(names.username)) return undefined;
        const created = await createUser(tx, {
          ...names,
          email,
          password_hash: passwordHash,
          status: 'active',
          managed_by: 'local',
          created_at: now,
          updated_at: now,
          password_changed_at: now,
        });
        await tx.insertMigrations([{ user_id: created.id, state: 'migrated', upstream_username: by === 'username' ? typed : null, upstream_email: by === 'email' ? typed : null }]);
        await this.ctx.audit.record({ kind: 'user_migrated', userId: created.id }, tx);
        return created;
      }) ?? (await holder());
    } catch (error) {
      if (!(error instanceof UniqueViolation) && !(error instanceof IdOutOfRange)) throw error;
      // A racing login created them first: the stored password decides, as for anyone.
      return holder();
    }
  }

  /**
   * What to ask the old service about a user imported before the identifier was kept: its name as
   * stored then (lowercased), which a case-sensitive old service may hold for another person, so
   * only if the operator declared it case-insensitive. Never the name the identity key left
   * (0007 made `straße` `strasse`, another name there), and never for a login typed in another
   * form than lowercasing alone makes that name (`ａｌｉｃｅ` is another name there too). Where the
   * name as stored then is not known (migration 0010), the user waits for a re-import.
   */
  private async legacyIdentifier(userId: number, typed: string, by: 'username' | 'email'): Promise<string | null> {
    if (!this.upstream.caseInsensitive) return null;
    const names = await this.ctx.store.legacyLoginNamesOf(userId);
    const identifier = (this.upstream.loginBy === 'email' ? names?.email : names?.username) ?? null;
    if (identifier !== null && by === this.upstream.loginBy && asciiLowercase(typed) !== identifier) return null;
    return identifier;
  }

  /**
   * Whether the old service's `name` stands for the account under its key here: it is its own
   * key, or (the old service declared case-insensitive) lowercasing ASCII A-Z alone makes it so.
   * Never a width or compatibility form, a folding beyond lowercase (`ß` → `ss`), nor a non-ASCII
   * letter JavaScript lowercases to another (KELVIN SIGN to `k`): even a case-insensitive old
   * service holds those as other names.
   */
  private standsForItsKey(name: string): boolean {
    const key = normalizeLogin(name);
    return name === key || (this.upstream.caseInsensitive && asciiLowercase(name) === key);
  }
}

/**
 * "Up to case", as an old service declared case-insensitive means it: ASCII A-Z only. JavaScript's
 * toLowerCase maps more (U+212A KELVIN SIGN to `k`, U+212B ANGSTROM SIGN to `å`), names the old
 * service holds as other people's.
 */
function asciiLowercase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}
