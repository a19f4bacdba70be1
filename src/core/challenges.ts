// NEW_PASSWORD_REQUIRED: a user created with a temporary password proves it at login, gets a
// short-lived single-use session, and trades it with a new password for a full token set.
import type { User } from '../store/schema.ts';
import type { CoreContext, RequestContext } from './context.ts';
import { MINUTE } from './context.ts';
import type { Codes } from './codes.ts';
import { InvalidCredentials, isAuthError, TokenInvalid } from './errors.ts';
import { checkPasswordPolicy, hashPassword } from './passwords.ts';
import { randomToken } from './secrets.ts';
import { normalizeLogin, type Users } from './users.ts';

export const CHALLENGE_TTL_MS = 3 * MINUTE;

export class Challenges {
  constructor(
    private readonly ctx: CoreContext,
    private readonly codes: Codes,
    private readonly users: Users,
  ) {}

  /** A challenge session for a user whose temporary password was just checked; refused if it changed meanwhile. */
  async start(user: User): Promise<string> {
    const session = randomToken();
    if (!(await this.codes.issue(user, 'challenge', session, CHALLENGE_TTL_MS, 'by-token'))) {
      throw InvalidCredentials('Incorrect username or password.');
    }
    return session;
  }

  /** Sets the new password and returns the user, now active; the caller opens the session. */
  async answerNewPassword(session: string, username: string, newPassword: string, request: RequestContext = {}): Promise<User> {
    await this.ctx.guard.admit(request.ip);
    let code;
    try {
      code = await this.codes.findByToken('challenge', session);
    } catch (error) {
      if (isAuthError(error)) throw TokenInvalid('The challenge session is not valid, used, or expired.');
      throw error;
    }
    const user = await this.ctx.store.userById(code.user_id);
    if (!user || user.username !== normalizeLogin(username) || user.status !== 'force_change_password') {
      throw TokenInvalid('The challenge session is not valid for this user.');
    }
    checkPasswordPolicy(newPassword, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    return this.users.applyPassword(user, await hashPassword(newPassword), {
      consumeCodeId: code.id,
      unchangedSince: { stamp: user.security_stamp, orElse: () => TokenInvalid('The challenge session is not valid, used, or expired.') },
      kind: 'password_set_at_challenge',
    });
  }
}
