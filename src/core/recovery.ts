// Forgotten passwords: a code by email (Wikimedia) or a one-time link to the hosted page (Ziik).
// Requests answer the same whether or not the account exists, and never wait for the mail.
import type { User } from '../store/schema.ts';
import type { CoreContext } from './context.ts';
import { MINUTE } from './context.ts';
import type { Codes } from './codes.ts';
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

  /** The user, when they exist, may reset and have not had too many reset mails lately. */
  private async recipient(user: User | undefined): Promise<(User & { email: string }) | undefined> {
    if (!user || !user.email || user.managed_by !== 'local' || user.status === 'disabled') return undefined;
    if ((await this.ctx.counters.resetMails.hit(String(user.id))) > 0) return undefined;
    return user as User & { email: string };
  }

  /**
   * Emails a confirmation code to the user, if there is such a user who may reset. The work
   * happens after the answer, so its time cannot tell whether the account exists.
   */
  requestCode(username: string): void {
    this.ctx.background.run('reset code request', async () => {
      const user = await this.recipient(await this.ctx.store.userByUsername(normalizeLogin(username)));
      if (!user) return;
      const code = randomDigits(RESET_CODE_DIGITS);
      // Not when the password changed or the user was disabled since the lookup.
      if (!(await this.codes.issue(user, 'reset_code', code, RESET_TTL_MS, 'by-user'))) return;
      await this.ctx.audit.record({ kind: 'reset_code_sent', userId: user.id });
      this.ctx.mailer.enqueue(resetCodeMessage(user.email, user.username, code, RESET_TTL_MS / MINUTE));
    });
  }

  /** Sets a new password with an emailed code; every session of the user ends. */
  async confirmCode(username: string, code: string, newPassword: string): Promise<void> {
    const user = await this.ctx.store.userByUsername(normalizeLogin(username));
    // Unknown and externally managed users never get a code, so they fail here like a wrong guess.
    if (!user) throw CodeMismatch('Invalid verification code provided, please try again.');
    const checked = await this.codes.checkForUser(user.id, 'reset_code', code);
    checkPasswordPolicy(newPassword, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    await this.users.applyPassword(user, await hashPassword(newPassword), { consumeCodeId: checked.id, kind: 'password_reset' });
  }

  /** Emails a one-time link to the hosted reset page, if the address belongs to a user who may reset; like requestCode, after the answer. */
  requestLink(email: string): void {
    if (!isValidEmail(normalizeLogin(email))) throw Validation('The email must be a valid email address.');
    this.ctx.background.run('reset link request', async () => {
      const user = await this.recipient(await this.ctx.store.userByEmail(normalizeLogin(email)));
      if (!user) return;
      const token = randomToken();
      if (!(await this.codes.issue(user, 'reset_link', token, RESET_TTL_MS, 'by-token'))) return;
      await this.ctx.audit.record({ kind: 'reset_link_sent', userId: user.id });
      const link = `${this.ctx.settings.publicUrl}/reset-password?token=${encodeURIComponent(token)}`;
      this.ctx.mailer.enqueue(resetLinkMessage(user.email, link, RESET_TTL_MS / MINUTE));
    });
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
  async resetWithLink(input: { token: string; email?: string; password: string; passwordConfirm: string }): Promise<void> {
    if (input.password !== input.passwordConfirm) throw Validation('The password confirmation does not match.');
    const code = await this.codes.findByToken('reset_link', input.token);
    const user = await this.ctx.store.userById(code.user_id);
    if (!user || (input.email !== undefined && user.email !== normalizeLogin(input.email))) throw CodeMismatch('This link is not valid.');
    if (user.managed_by !== 'local') throw ExternallyManaged('This user is managed by an external identity provider.');
    checkPasswordPolicy(input.password, { minLength: this.ctx.settings.passwordMinLength }, user.username);
    await this.users.applyPassword(user, await hashPassword(input.password), { consumeCodeId: code.id, kind: 'password_reset' });
  }
}
