// The one credential path. A password, status, email or ownership (managed_by) changes only
// through `change`, which in one transaction bumps the security stamp and ends what the old
// credential vouched for: sessions (but the caller's own on a self-service change), reset codes
// and links (mailed to the old address too), and challenge sessions. Two writes stay outside
// `change`, each its own operation: creating a user (nothing to retire yet) and the rehash at login
// (the same secret, compare-and-set). src/store/credentials.ts, which holds these writes, may be
// imported by this module alone (test/credential-writers.test.ts).
import type { User } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { insertUser, insertUsers, replacePasswordHash, writeCredentials, type CredentialWrite, type UserToCreate } from '../store/credentials.ts';
import type { CoreContext } from './context.ts';
import type { AuditKind } from './audit.ts';
import { CodeMismatch } from './errors.ts';

export type { UserToCreate } from '../store/credentials.ts';

/** What a credential change may set; each field left out stays as it is (the store stamps updated_at). */
export type CredentialChange = Omit<CredentialWrite, 'updated_at'>;

export interface ChangeOptions {
  kind: AuditKind;
  detail?: string;
  /** The caller's own session, kept on a self-service change. */
  keepSessionId?: string;
  /** The one-time code that authorised the change, burnt with it. */
  consumeCodeId?: string;
  /** Only if the user's stamp is still this one (nothing changed since the caller checked a password). */
  unchangedSince?: number;
  /** Only if the user has no password hash yet (a lazy migration's claim). */
  onlyWithoutPassword?: boolean;
  /** `status` applies to a disabled user too (enable, import); otherwise a disabled user stays disabled. */
  overridesDisabled?: boolean;
  /** Run inside this transaction instead of one of its own. */
  tx?: Store;
}

/** Creates one user (a new user has nothing to retire). */
export function createUser(store: Store, user: UserToCreate): Promise<User> {
  return insertUser(store, user);
}

/** Creates many users in one statement per shape; all or none (import, seeding). */
export function createUsers(store: Store, users: UserToCreate[]): Promise<void> {
  return insertUsers(store, users);
}

export class Credentials {
  constructor(private readonly ctx: Pick<CoreContext, 'store' | 'audit' | 'clock'>) {}

  /**
   * The one way credentials change. Returns the user as changed, or undefined when the user is
   * gone or a condition (`unchangedSince`, `onlyWithoutPassword`) no longer holds; then nothing
   * was written.
   */
  async change(userId: number, change: CredentialChange, options: ChangeOptions): Promise<User | undefined> {
    const now = this.ctx.clock();
    const run = async (tx: Store) => {
      // The user row first: every credential change takes its lock before anything else, so two
      // of them queue up there instead of deadlocking over codes and sessions on PostgreSQL.
      const updated = await writeCredentials(tx, userId, { ...change, updated_at: now }, {
        expectStamp: options.unchangedSince,
        withoutPassword: options.onlyWithoutPassword,
        keepDisabled: !options.overridesDisabled,
      });
      if (!updated) return undefined;
      if (options.consumeCodeId && !(await tx.consumeCode(options.consumeCodeId, now))) {
        throw CodeMismatch('this code was already used');
      }
      await tx.revokeUserSessions(userId, now, options.keepSessionId);
      // Codes, links and challenges sent before the change (to the old address too) must not undo it.
      await tx.retireCodes(userId, undefined, now);
      await this.ctx.audit.record({ kind: options.kind, userId, detail: options.detail }, tx);
      return updated;
    };
    return options.tx ? run(options.tx) : this.ctx.store.transaction(run);
  }

  /**
   * After a login whose password matched an outdated hash: stores `next`, a better hash of the
   * same password. Not a credential change (no session ends); skipped when the hash changed
   * meanwhile, so a racing password change always wins.
   */
  rehash(user: User, expected: string, next: string): Promise<boolean> {
    return this.ctx.store.transaction(async (tx) => {
      if (!(await replacePasswordHash(tx, user.id, expected, next))) return false;
      await this.ctx.audit.record({ kind: 'password_rehashed', userId: user.id }, tx);
      return true;
    });
  }
}
