// Forgotten passwords: a code by email (Wikimedia) or a one-time link to the hosted page (Ziik).
// Requests answer the same whether or not the account exists, and never wait for the mail.
import type { CoreContext, RequestContext } from './context.ts';
import { MINUTE } from './context.ts';
import { INVALID_CODE, type Codes } from './codes.ts';
import { accountOf } from './guard.ts';
import { CodeMismatch, ExternallyManaged, Validation } from './errors.ts';
import { checkPasswordPolicy, hashPassword } from './passwords.ts';
import { randomDigits, randomToken } from './secrets.ts';
import { isValidEmail, normalizeLogin, type Users } from './users.ts';
import { resetCodeMessage, resetLinkMessage } from '../mail/messages.ts';

export const RESET_TTL_MS = 60 * MINUTE;
export const RESET_CODE_DIGITS = 6;

export type LinkState = { valid: true; email: string } | { valid: false; reason: string };

export class Recovery {
  constructor(
    private readonly ctx: CoreContext,
    private readonly codes: Codes,
    private readonly users: Users,
  ) {}

  /**
   * Finds who a reset request is for and mails them a code or link, after the answer. The
   * path is the same for every name: the same lookups and counts, one write transaction
   * (the code and its audit event, or for nobody an audit event of the ignored request), and
   * a message rendered; only the mail's delivery differs. So neither the answer nor the work
   * that follows it tells whether the account exists.
   */
  private deliver(what: 'reset_code' | 'reset_link', loginName: string, request: RequestContext): void {
    this.ctx.background.run(`reset ${what === 'reset_code' ? 'code' : 'link'} request`, async () => {
      const { store, guard } = this.ctx;
      const found = what === 'reset_code' ? await store.userByUsername(loginName) : await store.userByEmail(loginName);
      const allowed = await guard.mayMail(accountOf(found, loginName), request.ip);
      const user = allowed && found?.email && found.managed_by === 'local' && found.status !== 'disabled' ? found : undefined;
      const to = user?.email ?? 'nobody@invalid.invalid';
      const secret = what === 'reset_code' ? randomDigits(RESET_CODE_DIGITS) : randomToken();
      const message =
        what === 'reset_code'
          ? resetCodeMessage(to, user?.username ?? loginName, secret, RESET_TTL_MS / MINUTE)
          : resetLinkMessage(to, `${this.ctx.settings.publicUrl}/reset-password?token=${encodeURIComponent(secret)}`, RESET_TTL_MS / MINUTE);
      if (!user) {
        await store.transaction(async (tx) => {
          await tx.retireCodes(0, what, this.ctx.clock(), this.ctx.settings.liveResetCodes);
          await this.ctx.audit.record({ kind: 'reset_request_ignored', userId: found?.id ?? null, ip: request.ip }, tx);
        });
        return;
      }
      const kind = what === 'reset_code' ? 'reset_code_sent' : 'reset_link_sent';
      const issued = await this.codes.issue(user, what, secret, RESET_TTL_MS, what === 'reset_code' ? 'by-user' : 'by-token', {
        keepEarlier: this.ctx.settings.liveResetCodes - 1,
        also: (tx) => this.ctx.audit.record({ kind, userId: user.id, ip: request.ip }, tx),
      });
      // Not when the password changed or the user was disabled since the lookup.
      if (issued) this.ctx.mailer.enqueue(message);
    });
  }

  /** Emails a confirmation code to the user, if there is such a user who may reset. Answers before the work. */
  async requestCode(username: string, request: RequestContext = {}): Promise<void> {
    await this.ctx.guard.admit(request.ip);
    await this.ctx.guard.admitResetRequest(request.ip);
    this.deliver('reset_code', normalizeLogin(username), request);
  }

  /** Sets a new password with an emailed code; every session of the user ends. */
  async confirmCode(username: string, code: string, newPassword: string, request: RequestContext = {}): Promise<void> {
    const { guard, store } = this.ctx;
    await guard.admit(request.ip);
    const name = normalizeLogin(username);
    const user = await store.userByUsername(name);
    await guard.beforeCodeCheck(accountOf(user, name), request.ip);
    // Unknown and externally managed users never get a code, so they fail here like a wrong guess.
    if (!user) throw CodeMismatch(INVALID_CODE);
    const checked = await this.codes.checkForUser(user.id, 'reset_code', code, this.ctx.settings.liveResetCodes);
    checkPasswordPolicy(newPassword, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    await this.users.applyPassword(user, await hashPassword(newPassword), { consumeCodeId: checked.id, kind: 'password_reset' });
  }

  /** Emails a one-time link to the hosted reset page, if the address belongs to a user who may reset; like requestCode. */
  async requestLink(email: string, request: RequestContext = {}): Promise<void> {
    if (!isValidEmail(normalizeLogin(email))) throw Validation('The email must be a valid email address.', 'email');
    await this.ctx.guard.admit(request.ip);
    await this.ctx.guard.admitResetRequest(request.ip);
    this.deliver('reset_link', normalizeLogin(email), request);
  }

  /** Whether a link still works, without using it up: mail scanners open links too. */
  async inspectLink(token: string): Promise<LinkState> {
    try {
      const code = await this.codes.findByToken('reset_link', token);
      const user = await this.ctx.store.userById(code.user_id);
      if (!user?.email) return { valid: false, reason: 'This link is not valid.' };
      return { valid: true, email: user.email };
    } catch (error) {
      return { valid: false, reason: (error as Error).message };
    }
  }

  /**
   * Sets a new password with a link token; both passwords must agree, and the email, when
   * given (the API asks for it; the hosted page already knows it), must be the account's.
   */
  async resetWithLink(input: { token: string; email?: string; password: string; passwordConfirm: string }, request: RequestContext = {}): Promise<void> {
    // The token is 256 random bits and spends no attempts: the per-IP limit is all it needs.
    await this.ctx.guard.admit(request.ip);
    if (input.password !== input.passwordConfirm) throw Validation('The password confirmation does not match.', 'password'); // Laravel's `confirmed` rule: the error belongs to the password itself
    const code = await this.codes.findByToken('reset_link', input.token);
    const user = await this.ctx.store.userById(code.user_id);
    if (!user || (input.email !== undefined && user.email !== normalizeLogin(input.email))) throw CodeMismatch('This link is not valid.');
    if (user.managed_by !== 'local') throw ExternallyManaged('This user is managed by an external identity provider.');
    checkPasswordPolicy(input.password, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    await this.users.applyPassword(user, await hashPassword(input.password), { consumeCodeId: code.id, kind: 'password_reset' });
  }
}
