// Logins and what follows them: tokens, refresh, renew, revoke, online verification,
// and changing a password with the current one.
import type { Session, User } from '../store/schema.ts';
import type { CoreContext, RequestContext } from './context.ts';
import type { Profile } from './profiles.ts';
import type { Claims } from './tokens.ts';
import {
  ExternallyManaged,
  ForeignSession,
  InvalidCredentials,
  LimitExceeded,
  PasswordChangeRequired,
  RefreshExpired,
  TokenInvalid,
  TokenRevoked,
  UserDisabled,
  UserNotFound,
} from './errors.ts';
import { checkPasswordPolicy, hashPassword, verifyPassword, type PasswordCheck } from './passwords.ts';
import { randomId, randomToken, sha256 } from './secrets.ts';
import { normalizeLogin, type Users } from './users.ts';
import type { Challenges } from './challenges.ts';
import { accountOf, clientKey } from './guard.ts';
import type { LazyMigration } from './migration.ts';
import { parseUserId } from './ids.ts';

export interface TokenSet {
  user: User;
  sessionId: string;
  accessToken: string;
  /** Unix seconds. */
  accessExpiresAt: number;
  idToken?: string;
  refreshToken?: string;
}

export type LoginResult =
  | { kind: 'tokens'; tokens: TokenSet }
  | { kind: 'challenge'; challengeName: 'NEW_PASSWORD_REQUIRED'; session: string };

export interface Verified {
  claims: Claims;
  user: User;
  session: Session;
}

const GENERIC_FAILURE = 'Incorrect username or password.';

/**
 * A session keeps the rules of the API that opened it for its whole life: only that API's
 * renew or refresh path may extend it, so no session escapes its own lifetime, cap or window
 * through another API's path. Verification paths accept every API's tokens; only renewal is scoped.
 */
function assertOwnApi(session: Session, profile: Profile, message: string): void {
  if (session.dialect !== profile.dialect) throw ForeignSession(message);
}

export class Sessions {
  constructor(
    private readonly ctx: CoreContext,
    private readonly users: Users,
    private readonly challenges: Challenges,
    /** LATCHKEY_MIGRATE_FROM: users without a password here are checked once at the old service. */
    private readonly migration?: LazyMigration,
  ) {}

  /**
   * Checks a password under the limits (src/core/guard.ts) and returns the user. The lockout
   * counts per account, whichever name (username or email) the login used.
   */
  private async checkPassword(
    typed: string,
    password: unknown,
    by: Profile['loginBy'] | { id: number },
    request: RequestContext,
  ): Promise<User | undefined> {
    const { guard, store } = this.ctx;
    const loginName = normalizeLogin(typed);
    await guard.admit(request.ip);
    const client = clientKey(request.ip);
    // Capacity for a costly check is decided before the name is looked up, by the client and the
    // gate alone: a refusal for it is the same for an imported, native or unknown name (INVARIANTS 10).
    this.ctx.hashBudget.gate.admit(client);
    // The holder of a session is checked by its id: its username's key may be another account's
    // (one set aside by a collision, `COLLISION-7`, has the key `collision-7`, which anyone may hold).
    let user =
      typeof by === 'object' ? await store.userById(by.id) : by === 'email' ? await store.userByEmail(loginName) : await store.userByUsername(loginName);
    const account = accountOf(user, loginName);
    await guard.mayCheckPassword(account, request.ip);
    // Counted once, as the first check (the old service's, or ours) starts; never for a login the
    // costly-hash gate turned away, which was not checked.
    let counted: Promise<void> | undefined;
    const count = () => (counted ??= guard.countPasswordCheck(account, request.ip));
    if (typeof by === 'string' && this.migration?.applies(user) && typeof password === 'string') {
      // The old service's check is a check too: a client at its share is refused before it, counting nothing.
      this.ctx.hashBudget.gate.admit(client);
      await count();
      user = (await this.migration.migrate(typed, loginName, by, user, password, request.ip)) ?? user;
    }
    let check: PasswordCheck | undefined;
    if (typeof password === 'string') check = await verifyPassword(user?.password_hash, password, this.ctx.hashBudget, { client, beforeCheck: count });
    else await count();
    if (!check?.ok || !user) {
      // The caller gets the same answer as for a wrong password (an account that signs in
      // elsewhere is not revealed); the operator's trail says why.
      // A stored hash over the work cap is refused unchecked: the trail names its format and cost, no secret.
      const detail = user?.managed_by === 'external' ? 'externally_managed' : check?.overCost ? `hash_over_cost:${check.overCost.format}:${check.overCost.cost}` : undefined;
      await this.ctx.audit.record({ kind: 'login_failed', userId: user?.id ?? null, ip: request.ip, detail });
      return undefined;
    }
    await guard.passed(account, request.ip);
    return check.needsRehash ? this.users.upgradeHash(user, password as string) : user;
  }

  private async authenticate(loginName: string, password: string, profile: Profile, request: RequestContext): Promise<User> {
    const user = await this.checkPassword(loginName, password, profile.loginBy, request);
    if (!user) throw InvalidCredentials(GENERIC_FAILURE);
    if (user.status === 'disabled') throw UserDisabled('The user is disabled.');
    return user;
  }

  /** Login that answers a NEW_PASSWORD_REQUIRED challenge for a user with a temporary password. */
  async login(loginName: string, password: string, profile: Profile, request: RequestContext = {}): Promise<LoginResult> {
    const user = await this.authenticate(loginName, password, profile, request);
    if (user.status === 'force_change_password') {
      return { kind: 'challenge', challengeName: 'NEW_PASSWORD_REQUIRED', session: await this.challenges.start(user) };
    }
    return { kind: 'tokens', tokens: await this.start(user, profile, request) };
  }

  /** Login for APIs without challenges: a user who must change their password gets an error instead. */
  async loginForTokens(loginName: string, password: string, profile: Profile, request: RequestContext = {}): Promise<TokenSet> {
    const user = await this.authenticate(loginName, password, profile, request);
    if (user.status === 'force_change_password') throw PasswordChangeRequired('The password must be changed before signing in.');
    return this.start(user, profile, request);
  }

  /** Opens a session and mints its first tokens, for a user as read when their password was checked. */
  async start(user: User, profile: Profile, request: RequestContext = {}): Promise<TokenSet> {
    const now = this.ctx.clock();
    const refreshToken = profile.refreshToken ? randomToken() : undefined;
    const session: Session = {
      id: randomId(),
      user_id: user.id,
      refresh_token_hash: refreshToken ? sha256(refreshToken) : null,
      dialect: profile.dialect,
      refresh_count: 0,
      created_at: now,
      expires_at: now + profile.sessionTtl * 1000,
      revoked_at: null,
      last_used_at: now,
      ip: request.ip ?? null,
      user_agent: request.userAgent?.slice(0, 512) ?? null,
    };
    // Only while the user is as their password was checked: a password change or disable that
    // committed since voids the login, and one that comes after waits for this insert, then ends it.
    await this.ctx.store.transaction(async (tx) => {
      if (!(await tx.holdUserAt(user.id, user.security_stamp))) throw InvalidCredentials(GENERIC_FAILURE);
      await tx.insertSession(session);
    });
    await this.ctx.audit.record({ kind: 'login', userId: user.id, ip: request.ip, detail: profile.dialect });
    // Issued at the session's own time, so a Roypi token's iat is its orig_iat.
    return { ...(await this.mint(user, session, profile, session.created_at)), refreshToken };
  }

  private async mint(user: User, session: Session, profile: Profile, issuedAtMs?: number): Promise<TokenSet> {
    const base = {
      issuedAtMs,
      userId: user.id,
      username: user.username,
      sessionId: session.id,
      ttlSeconds: profile.accessTtl,
      extra: profile.extraClaims(user, Math.floor(session.created_at / 1000)),
    };
    const access = await this.ctx.tokens.mint({ ...base, use: 'access' });
    const id = profile.idToken
      ? await this.ctx.tokens.mint({ ...base, use: 'id', extra: { ...base.extra, email: user.email ?? undefined } })
      : undefined;
    return {
      user,
      sessionId: session.id,
      accessToken: access.token,
      accessExpiresAt: access.claims.exp,
      idToken: id?.token,
    };
  }

  /** Wikimedia-style refresh: a refresh token (and its owner's name) for new access and ID tokens. */
  async refresh(username: string, refreshToken: string, profile: Profile): Promise<TokenSet> {
    const now = this.ctx.clock();
    const found = await this.ctx.store.sessionWithUser({ refreshHash: sha256(refreshToken) });
    if (!found) throw TokenInvalid('The refresh token is not valid.');
    const { session, user } = found;
    if (session.revoked_at !== null || session.expires_at <= now) throw TokenInvalid('The refresh token is not valid.');
    if (user.username !== normalizeLogin(username) || user.status === 'disabled') throw TokenInvalid('The refresh token is not valid.');
    assertOwnApi(session, profile, 'The refresh token is not valid.');
    if (profile.refreshLimit !== undefined && !(await this.ctx.store.takeRefresh(session.id, profile.refreshLimit, now))) {
      const again = await this.ctx.store.sessionById(session.id);
      if (again?.revoked_at !== null) throw TokenInvalid('The refresh token is not valid.');
      throw LimitExceeded('Refresh tokens limit has been exceeded.');
    }
    return this.mint(user, session, profile);
  }

  /** Roypi/Ziik-style renew: a live access token of this API's own session for a new one, within the session's lifetime. */
  async renew(accessToken: string, profile: Profile): Promise<TokenSet> {
    const { user, session } = await this.verify(accessToken);
    assertOwnApi(session, profile, 'The token was not issued by this API.');
    const now = this.ctx.clock();
    if (session.expires_at <= now) throw RefreshExpired('The session can no longer be refreshed.');
    return this.mint(user, session, profile);
  }

  /** Ends the session of a refresh token, and with it every access token minted in it. */
  async revoke(refreshToken: string, profile: Profile, request: RequestContext = {}): Promise<void> {
    const session = (await this.ctx.store.sessionWithUser({ refreshHash: sha256(refreshToken) }))?.session;
    if (!session) throw TokenInvalid('The refresh token is not valid.');
    assertOwnApi(session, profile, 'The refresh token is not valid.');
    if (await this.ctx.store.revokeSession(session.id, this.ctx.clock())) {
      await this.ctx.audit.record({ kind: 'session_revoked', userId: session.user_id, ip: request.ip });
    }
  }

  /**
   * Online verification: signature and expiry, then the session and the user as they are now,
   * so a revoked session or a disabled user fails at once.
   */
  async verify(accessToken: unknown): Promise<Verified> {
    const claims = await this.ctx.tokens.verify(accessToken, 'access');
    const found = await this.ctx.verifyCache.session(claims.sid, () => this.ctx.store.sessionWithUser({ id: claims.sid }));
    if (!found) {
      // A deleted user takes their sessions with them; otherwise the session was ended and swept.
      const subject = parseUserId(claims.sub);
      if (subject === undefined) throw TokenInvalid('The token is not valid.');
      if (!(await this.ctx.store.userById(subject))) throw UserNotFound('The user no longer exists.');
      throw TokenRevoked('The token has been revoked.');
    }
    const { session, user } = found;
    if (String(session.user_id) !== claims.sub) throw TokenInvalid('The token is not valid.');
    // Disabling revokes sessions too; say the real reason.
    if (user.status === 'disabled') throw UserDisabled('The user is disabled.');
    if (session.revoked_at !== null) throw TokenRevoked('The token has been revoked.');
    return { claims, user, session };
  }

  /** Changes a password given the current one; every other session of the user ends. */
  async changePassword(accessToken: string, previous: string, proposed: string, request: RequestContext = {}): Promise<void> {
    const { user, session } = await this.verify(accessToken);
    if (user.managed_by === 'external') throw ExternallyManaged('This user is managed by an external identity provider.');
    const checked = await this.checkPassword(user.username, previous, { id: user.id }, request);
    if (!checked) throw InvalidCredentials(GENERIC_FAILURE);
    checkPasswordPolicy(proposed, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    await this.users.applyPassword(user, await hashPassword(proposed), {
      keepSessionId: session.id,
      // The password checked above must still be the current one when the new one lands.
      unchangedSince: { stamp: checked.security_stamp, orElse: () => InvalidCredentials(GENERIC_FAILURE) },
      kind: 'password_changed',
    });
  }
}
