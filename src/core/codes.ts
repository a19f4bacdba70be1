// One-time codes: reset codes typed from an email, reset links, and challenge sessions.
// Only a hash is stored; each one works once, for a limited time, and a few wrong guesses kill it.
import type { CodePurpose, OneTimeCode, User } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { CoreContext } from './context.ts';
import { CodeMismatch, ExpiredCode } from './errors.ts';
import { keyedHash, randomId, safeEqual } from './secrets.ts';

/** Every way a typed code can fail says this, so the answer tells nothing about the account. */
export const INVALID_CODE = 'Invalid verification code provided, please try again.';

// Every code is stored as an HMAC under the instance secret, which is not in the database:
// a 6-digit code hashed without a key is reversed from its row in a fraction of a second.

export interface IssueOptions {
  /**
   * Earlier live codes that stay valid beside the new one (default none). A reset request can
   * come from anyone, so it must not kill the code the account's owner is about to type.
   */
  keepEarlier?: number;
  /** More writes for the same transaction (the audit event). */
  also?: (tx: Store) => Promise<void>;
}

export class Codes {
  constructor(private readonly ctx: CoreContext) {}

  /** Short codes are bound to their row, so equal codes of two users never share a hash. */
  private hashOf(id: string, code: string): string {
    return keyedHash(this.ctx.secretKey, `${id}:${code}`);
  }

  /** Long random tokens are looked up by their hash alone. */
  private hashOfToken(purpose: CodePurpose, token: string): string {
    return keyedHash(this.ctx.secretKey, `${purpose}:${token}`);
  }

  /**
   * Stores a new code for the user, retiring earlier ones of the same purpose beyond
   * `options.keepEarlier`; false, and
   * nothing stored, when the user's security stamp is no longer `user.security_stamp` (a password
   * change or disable committed since the user was read) or the user is disabled or gone.
   */
  async issue(
    user: Pick<User, 'id' | 'security_stamp'>,
    purpose: CodePurpose,
    secret: string,
    ttlMs: number,
    lookup: 'by-user' | 'by-token',
    options: IssueOptions = {},
  ): Promise<boolean> {
    const now = this.ctx.clock();
    const id = randomId();
    const userId = user.id;
    return this.ctx.store.transaction(async (tx) => {
      if (!(await tx.holdUserAt(userId, user.security_stamp))) return false;
      await tx.retireCodes(userId, purpose, now, options.keepEarlier ?? 0);
      await tx.insertCode({
        id,
        purpose,
        user_id: userId,
        code_hash: lookup === 'by-user' ? this.hashOf(id, secret) : this.hashOfToken(purpose, secret),
        expires_at: now + ttlMs,
        attempts: 0,
        used_at: null,
        created_at: now,
      });
      await options.also?.(tx);
      return true;
    });
  }

  /**
   * Checks a typed code against each of the user's live ones (at most `among`). Every guess
   * spends an attempt of each code it is compared with, so no code takes more than the
   * configured number of guesses in all, whoever sends them.
   */
  async checkForUser(userId: number, purpose: CodePurpose, guess: string, among: number): Promise<OneTimeCode> {
    const { store, settings } = this.ctx;
    let match: OneTimeCode | undefined;
    for (const code of await store.liveCodes(userId, purpose, this.ctx.clock(), among)) {
      if (!(await store.takeCodeAttempt(code.id, settings.codeMaxAttempts))) continue;
      if (safeEqual(this.hashOf(code.id, guess), code.code_hash)) match ??= code;
    }
    if (!match) throw CodeMismatch(INVALID_CODE);
    return match;
  }

  /** Finds a live code by its token; says why when it is unknown, used or expired. */
  async findByToken(purpose: CodePurpose, token: string): Promise<OneTimeCode> {
    const code = await this.ctx.store.codeByHash(purpose, this.hashOfToken(purpose, token));
    if (!code) throw CodeMismatch('This link is not valid.');
    if (code.used_at !== null) throw ExpiredCode('This link has already been used.');
    if (code.expires_at <= this.ctx.clock()) throw ExpiredCode('This link has expired.');
    return code;
  }
}
