// Lazy migration from a live service (LATCHKEY_MIGRATE_FROM): a user who is not here yet, or was
// imported without a password, is checked once against the old service's own login; when it says
// yes, the user is kept here with the password hashed to argon2id, and the old service is never
// asked about them again (only users without a password hash are ever forwarded).
import type { User } from '../store/schema.ts';
import { IdOutOfRange, UniqueViolation } from '../store/store.ts';
import type { CoreContext } from './context.ts';
import { hashPassword } from './passwords.ts';
import { checkIdentity } from './users.ts';
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

  /** Whether a login for this (possibly absent) local user goes to the old service. */
  applies(local: User | undefined): boolean {
    return !local || (local.password_hash === null && local.status !== 'disabled');
  }

  /**
   * Asks the old service; on a yes, returns the local user now holding this password (created, or
   * the hashless one given), else undefined. `loginName` is normalized, as typed, found `by`.
   */
  async migrate(loginName: string, by: 'username' | 'email', local: User | undefined, password: string, clientIp?: string): Promise<User | undefined> {
    // The old service wants its own identifier: known for a local user, else only if the client typed that kind.
    const identifier = local ? (this.upstream.loginBy === 'email' ? local.email : local.username) : by === this.upstream.loginBy ? loginName : null;
    if (!identifier) return undefined;
    const identity = await this.upstream.login(identifier, password, clientIp);
    if (!identity) return undefined;
    const passwordHash = await hashPassword(password);
    const now = this.ctx.clock();
    if (local) {
      // Through the one credential path: the stamp moves and anything issued before ends.
      const claimed = await new Credentials(this.ctx).change(
        local.id,
        { password_hash: passwordHash, managed_by: 'local', password_changed_at: now },
        { kind: 'user_migrated', onlyWithoutPassword: true },
      );
      // Lost a race with another migration or an admin: the stored password decides, as for anyone.
      return claimed;
    }
    return this.create(loginName, by, identity, passwordHash, now);
  }

  private async create(loginName: string, by: 'username' | 'email', identity: UpstreamIdentity, passwordHash: string, now: number) {
    // The name typed is the one the old service just confirmed; the other comes from its answer, if usable.
    const usable = (username: string, email: string | undefined) => {
      try {
        return checkIdentity(username, email);
      } catch {
        return undefined;
      }
    };
    const names =
      by === 'username'
        ? (usable(loginName, identity.email) ?? usable(loginName, undefined))
        : (usable(identity.username ?? loginName, loginName) ?? usable(loginName, loginName));
    if (!names) return undefined;
    const row = {
      ...names,
      password_hash: passwordHash,
      status: 'active' as const,
      managed_by: 'local' as const,
      created_at: now,
      updated_at: now,
      password_changed_at: now,
    };
    try {
      const user = await this.ctx.store.transaction(async (tx) => {
        const created = await createUser(tx, row);
        await this.ctx.audit.record({ kind: 'user_migrated', userId: created.id }, tx);
        return created;
      });
      return user;
    } catch (error) {
      if (!(error instanceof UniqueViolation) && !(error instanceof IdOutOfRange)) throw error;
      // A racing login migrated them first, or the other name is someone else's: the local check decides.
      return undefined;
    }
  }
}
