// Accounts: creating, finding, enabling, removing, and setting passwords as an admin.
import type { User, UserStatus } from '../store/schema.ts';
import { UniqueViolation } from '../store/store.ts';
import type { CoreContext } from './context.ts';
import type { AuditKind } from './audit.ts';
import { ExternallyManaged, IdsExhausted, UserExists, UserNotFound, Validation, type AuthError } from './errors.ts';
import { checkPasswordPolicy, hashPassword } from './passwords.ts';
import { createUser, Credentials } from './credentials.ts';
import { IdOutOfRange } from '../store/store.ts';
import { confusableReason } from './identity.ts';
import { hasStableKey, identityKey } from '../domain/identity-key.ts';
import { lookAlikeKey } from '../domain/skeleton.ts';
import { MAX_USERS_PAGE, type UserRef } from './user-addressing.ts';

const USERNAME = /^[\p{L}\p{M}\p{S}\p{N}\p{P}]{1,128}$/u;
// No whitespace, control characters or lone surrogates in any part.
const EMAIL = /^[^\s@\p{Cc}\p{Cs}]+@[^\s@\p{Cc}\p{Cs}]+\.[^\s@\p{Cc}\p{Cs}]+$/u;

/**
 * The identity key (src/domain/identity-key.ts): usernames and emails are stored, and matched
 * everywhere, by it alone.
 */
export const normalizeLogin = identityKey;

export function isValidEmail(value: string): boolean {
  return value.length <= 254 && EMAIL.test(value);
}

/** A username and email as stored (normalized), or a Validation error saying which is wrong. */
export function checkIdentity(rawUsername: string, rawEmail: string | null | undefined): { username: string; email: string | null } {
  const username = normalizeLogin(rawUsername);
  if (!USERNAME.test(username) || !hasStableKey(username)) throw Validation('username must be 1-128 visible characters without spaces', 'username');
  const email = rawEmail ? normalizeLogin(rawEmail) : null;
  if (email !== null && (!isValidEmail(email) || !hasStableKey(email))) throw Validation('email is not a valid address', 'email');
  // Look-alikes and invisible characters are refused where names are made (UTS #39).
  const reason = confusableReason(username, 'username') ?? (email === null ? undefined : confusableReason(email, 'email'));
  if (reason) throw Validation(reason, reason.startsWith('email') ? 'email' : 'username');
  return { username, email };
}

/** The look-alike keys (UTS #39 skeletons) of a username and email as stored. */
export function skeletonsOf(identity: { username: string; email: string | null }) {
  return { usernames: [lookAlikeKey(identity.username)], emails: identity.email === null ? [] : [lookAlikeKey(identity.email)] };
}

/**
 * Why a name or email may not be made because another account looks like it (same skeleton,
 * another key), or undefined. `found` are the accounts holding one of its skeletons; `self`, the
 * account being changed. The same key is no look-alike: that is the account itself, or taken.
 */
export function lookAlikeReason(
  found: readonly User[],
  identity: { username: string; email: string | null },
  self?: number,
  only?: 'username' | 'email',
): string | undefined {
  const others = found.filter((u) => u.id !== self);
  const username = lookAlikeKey(identity.username);
  const byName = only === 'email' ? undefined : others.find((u) => u.username_skeleton === username && u.username !== identity.username);
  if (byName) return `username looks like the username of user ${byName.id} (confusable characters, UTS #39)`;
  if (identity.email === null || only === 'username') return undefined;
  const email = lookAlikeKey(identity.email);
  const byEmail = others.find((u) => u.email_skeleton === email && u.email !== identity.email);
  if (byEmail) return `email looks like the email of user ${byEmail.id} (confusable characters, UTS #39)`;
  return undefined;
}

export interface PublicUser {
  id: number;
  username: string;
  email: string | null;
  status: UserStatus;
  managed_by: User['managed_by'];
  created_at: string;
  updated_at: string;
  password_changed_at: string | null;
  legacy_id: string | null;
}

/** A user as the admin API and CLI show it: never the hash. */
export function publicUser(user: User): PublicUser {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    status: user.status,
    managed_by: user.managed_by,
    created_at: iso(user.created_at)!,
    updated_at: iso(user.updated_at)!,
    password_changed_at: iso(user.password_changed_at),
    legacy_id: user.legacy_id,
  };
}

export interface NewUserInput {
  username: string;
  email?: string | null;
  /** A password the user keeps. */
  password?: string;
  /** A password the user must replace at first login. */
  temporaryPassword?: string;
  /** Authenticated elsewhere: no password, no reset. */
  external?: boolean;
}

export class Users {
  private readonly credentials: Credentials;

  constructor(private readonly ctx: CoreContext) {
    this.credentials = new Credentials(ctx);
  }

  async create(input: NewUserInput): Promise<User> {
    const { username, email } = checkIdentity(input.username ?? '', input.email);
    const secrets = [input.password, input.temporaryPassword].filter((p) => p !== undefined);
    if (input.external ? secrets.length > 0 : secrets.length !== 1) {
      throw Validation('give exactly one of password or temporary_password, or external: true', 'password');
    }
    const password = secrets[0];
    if (password !== undefined) checkPasswordPolicy(password, { minLength: this.ctx.settings.passwordMinLength }, username);
    // A name that looks like another account's is refused plainly; the store's unique skeletons
    // hold the line against a race (a conflict then).
    const lookAlike = lookAlikeReason(await this.ctx.store.usersLookingLike(skeletonsOf({ username, email })), { username, email });
    if (lookAlike) throw Validation(lookAlike, lookAlike.startsWith('email') ? 'email' : 'username');
    const now = this.ctx.clock();
    try {
      const user = await createUser(this.ctx.store, {
        username,
        email,
        password_hash: password === undefined ? null : await hashPassword(password),
        status: input.temporaryPassword !== undefined ? 'force_change_password' : 'active',
        managed_by: input.external ? 'external' : 'local',
        created_at: now,
        updated_at: now,
        password_changed_at: input.password !== undefined ? now : null,
      });
      await this.ctx.audit.record({ kind: 'user_created', userId: user.id });
      return user;
    } catch (error) {
      if (error instanceof UniqueViolation) throw UserExists('a user with that username or email already exists');
      if (error instanceof IdOutOfRange) throw IdsExhausted('no user id is left at or below 2^53 - 1; see "Migrating users" in the README');
      throw error;
    }
  }

  async find(ref: UserRef): Promise<User> {
    const user =
      'id' in ref
        ? await this.ctx.store.userById(ref.id)
        : 'legacyId' in ref
          ? await this.ctx.store.userByLegacyId(ref.legacyId)
          : await this.ctx.store.userByUsername(normalizeLogin(ref.username));
    if (!user) throw UserNotFound('No such user.');
    return user;
  }

  list(options: { limit?: number; afterId?: number } = {}): Promise<User[]> {
    return this.ctx.store.listUsers({ limit: Math.min(options.limit ?? 100, MAX_USERS_PAGE), afterId: options.afterId ?? 0 });
  }

  /** Disabling also ends every session, so tokens already out stop working at once. */
  async disable(ref: UserRef): Promise<User> {
    const user = await this.find(ref);
    const disabled = await this.credentials.change(user.id, { status: 'disabled' }, { kind: 'user_disabled' });
    if (!disabled) throw UserNotFound('No such user.');
    return disabled;
  }

  async enable(ref: UserRef): Promise<User> {
    const user = await this.find(ref);
    if (user.status !== 'disabled') return user;
    // A user who never set their own password still has to.
    const status: UserStatus = user.managed_by === 'local' && user.password_changed_at === null ? 'force_change_password' : 'active';
    const enabled = await this.credentials.change(user.id, { status }, { kind: 'user_enabled', overridesDisabled: true });
    if (!enabled) throw UserNotFound('No such user.');
    return enabled;
  }

  async remove(ref: UserRef): Promise<void> {
    const user = await this.find(ref);
    await this.ctx.store.transaction(async (tx) => {
      await tx.deleteUser(user.id);
      // Its id (its `sub`) is never another account's.
      await tx.retireUserId(user.id, this.ctx.clock());
      // A deleted user is never created again by lazy migration (LATCHKEY_MIGRATE_FROM).
      await tx.recordDeletedLogins([user.username, ...(user.email ? [user.email] : [])], this.ctx.clock());
    });
    await this.ctx.audit.record({ kind: 'user_deleted', userId: null, detail: user.username });
  }

  /** Sets a password as an admin; a temporary one must be replaced at next login. Ends all sessions. */
  async setPassword(ref: UserRef, password: string, options: { temporary?: boolean } = {}): Promise<User> {
    const user = await this.find(ref);
    if (user.managed_by === 'external') throw ExternallyManaged('this user signs in through an external identity provider and has no password here');
    checkPasswordPolicy(password, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    return this.applyPassword(user, await hashPassword(password), {
      status: options.temporary ? 'force_change_password' : 'active',
      kind: 'password_set_by_admin',
    });
  }

  /**
   * Accounts that landed on one identity key when stored names were rekeyed (migration 0007):
   * kept apart, each reachable by id and none by that name, until an operator settles them.
   */
  async collisions() {
    return (await this.ctx.store.identityCollisions()).map((c) => ({
      user_id: Number(c.user_id),
      field: c.field,
      original: c.original,
      key: c.key,
      found_at: new Date(Number(c.found_at)).toISOString(),
    }));
  }

  /**
   * The newer of two existing accounts found looking alike when skeletons were added (migration
   * 0011): both kept as they are, the newer without a skeleton, until an operator deletes one by
   * id or leaves both.
   */
  async lookAlikes() {
    return (await this.ctx.store.lookAlikeAccounts()).map((c) => ({
      user_id: Number(c.user_id),
      field: c.field,
      looks_like_user_id: Number(c.like_user_id),
      found_at: new Date(Number(c.found_at)).toISOString(),
    }));
  }

  /**
   * Settles a user's collisions: gives them the colliding key back, or the name or email given
   * instead. Refused while another account holds the key or still waits under it (delete that
   * one by id, or settle it with another name, first).
   */
  async settleCollision(id: number, instead: { username?: string; email?: string } = {}): Promise<User> {
    const user = await this.find({ id });
    const pending = await this.ctx.store.collisionsOf(user.id);
    if (!pending.length) throw Validation('this user has no identity collision to settle');
    return this.ctx.store.transaction(async (tx) => {
      for (const collision of pending) {
        const given = collision.field === 'username' ? instead.username : instead.email;
        // The key given back was stored before confusables were refused: checked as any name made here.
        const confusable = given === undefined ? confusableReason(collision.key, collision.field) : undefined;
        if (confusable) throw Validation(`${confusable}; settle it with another ${collision.field} (--${collision.field})`, collision.field);
        const key =
          given === undefined
            ? collision.key
            : collision.field === 'username'
              ? checkIdentity(given, null).username
              : checkIdentity(user.username, given).email!;
        const renamed = { username: collision.field === 'username' ? key : user.username, email: collision.field === 'email' ? key : user.email };
        const lookAlike = lookAlikeReason(await tx.usersLookingLike(skeletonsOf(renamed)), renamed, user.id, collision.field);
        if (lookAlike) throw Validation(lookAlike, collision.field);
        if (await tx.keyClaimedByOther(collision.field, key, user.id)) {
          throw UserExists(`another account also waits for the ${collision.field} ${key}: delete it by id, or settle it with another ${collision.field}, first`);
        }
        try {
          await new Credentials(this.ctx).change(user.id, { [collision.field]: key }, { kind: 'identity_collision_settled', tx });
        } catch (error) {
          if (error instanceof UniqueViolation) throw UserExists(`another account holds the ${collision.field} ${key}`);
          throw error;
        }
        await tx.clearCollision(user.id, collision.field);
      }
      return (await tx.userById(user.id))!;
    });
  }

  /** The user's sessions, newest first, for an operator: never a token or its hash. */
  async sessions(ref: UserRef, limit = 100) {
    const user = await this.find(ref);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const now = this.ctx.clock();
    return (await this.ctx.store.sessionsOf(user.id, limit)).map((s) => ({
      id: s.id,
      api: s.dialect,
      live: s.revoked_at === null && s.expires_at > now,
      refreshes: s.refresh_count,
      created_at: iso(s.created_at),
      expires_at: iso(s.expires_at),
      revoked_at: iso(s.revoked_at),
      last_used_at: iso(s.last_used_at),
      ip: s.ip,
      user_agent: s.user_agent,
    }));
  }

  /** The user's audit trail, newest first. */
  async events(ref: UserRef, limit = 100) {
    const user = await this.find(ref);
    return (await this.ctx.store.auditOf(user.id, limit)).map((e) => ({
      at: new Date(e.at).toISOString(),
      kind: e.kind,
      ip: e.ip,
      detail: e.detail,
    }));
  }

  /** A user as an operator sees them: publicUser, with whether and where they are locked out. */
  async view(user: User) {
    return { ...publicUser(user), lockout: await this.ctx.guard.lockState(user) };
  }

  /** Lifts every lockout of the user (src/core/guard.ts): the account's delay and each address's. */
  async unlock(ref: UserRef): Promise<User> {
    const user = await this.find(ref);
    await this.ctx.guard.unlock(user);
    await this.ctx.audit.record({ kind: 'user_unlocked', userId: user.id });
    return user;
  }

  async signOutEverywhere(ref: UserRef): Promise<number> {
    const user = await this.find(ref);
    const now = this.ctx.clock();
    const count = await this.ctx.store.revokeUserSessions(user.id, now);
    await this.ctx.audit.record({ kind: 'signed_out_everywhere', userId: user.id });
    return count;
  }

  /**
   * After a login whose password matched an outdated hash (raw, foreign, or older parameters):
   * stores argon2id of the normalized password. Not a password change: no session ends. Skipped
   * when the hash changed meanwhile, so a racing password change always wins.
   */
  async upgradeHash(user: User, password: string): Promise<User> {
    const previous = user.password_hash;
    if (previous === null) return user;
    const next = await hashPassword(password);
    return (await this.credentials.rehash(user, previous, next)) ? { ...user, password_hash: next } : user;
  }

  /**
   * A password change (through the one credential path, src/core/credentials.ts): new hash, new
   * status, a new security stamp, every session but `keepSessionId` revoked and every outstanding
   * secret (reset codes and links, challenge sessions) retired, in one transaction. `consumeCodeId`
   * burns the one-time code that authorised it; `unchangedSince` refuses the change (with its
   * error) when the user's stamp has moved since the caller checked their password, so the last
   * of two racing changes cannot silently win with a password it never proved.
   */
  async applyPassword(
    user: User,
    passwordHash: string,
    options: {
      status?: UserStatus;
      keepSessionId?: string;
      consumeCodeId?: string;
      unchangedSince?: { stamp: number; orElse: () => AuthError };
      kind: AuditKind;
    },
  ): Promise<User> {
    const updated = await this.credentials.change(
      user.id,
      {
        password_hash: passwordHash,
        status: options.status ?? 'active',
        password_changed_at: options.status === 'force_change_password' ? null : this.ctx.clock(),
      },
      { kind: options.kind, keepSessionId: options.keepSessionId, consumeCodeId: options.consumeCodeId, unchangedSince: options.unchangedSince?.stamp },
    );
    if (!updated) throw options.unchangedSince?.orElse() ?? UserNotFound('No such user.');
    return updated;
  }
}
