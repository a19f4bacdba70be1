// One-time codes: reset codes typed from an email, reset links, and challenge sessions.
// Only a hash is stored; each one works once, for a limited time, and a few wrong guesses kill it.
import type { CodePurpose, OneTimeCode, User } from '../store/schema.ts';
import type { CoreContext } from './context.ts';
import { CodeMismatch, ExpiredCode } from './errors.ts';
import { randomId, safeEqual, sha256 } from './secrets.ts';

export const MAX_CODE_ATTEMPTS = 5;

/** Short codes are bound to their row, so equal codes of two users never share a hash. */
const hashOf = (id: string, secret: string) => sha256(`${id}:${secret}`);
/** Long random tokens are looked up by their hash alone. */
const hashOfToken = (purpose: CodePurpose, token: string) => sha256(`${purpose}:${token}`);

export class Codes {
  constructor(private readonly ctx: CoreContext) {}

  /**
   * Stores a new code for the user, retiring any earlier one of the same purpose; false, and
   * nothing stored, when the user's security stamp is no longer `user.security_stamp` (a password
   * change or disable committed since the user was read) or the user is disabled or gone.
   */
  async issue(
    user: Pick<User, 'id' | 'security_stamp'>,
    purpose: CodePurpose,
    secret: string,
    ttlMs: number,
    lookup: 'by-user' | 'by-token',
  ): Promise<boolean> {
    const now = this.ctx.clock();
    const id = randomId();
    const userId = user.id;
    return this.ctx.store.transaction(async (tx) => {
      if (!(await tx.holdUserAt(userId, user.security_stamp))) return false;
      await tx.retireCodes(userId, purpose, now);
      await tx.insertCode({
        id,
        purpose,
        user_id: userId,
        code_hash: lookup === 'by-user' ? hashOf(id, secret) : hashOfToken(purpose, secret),
        expires_at: now + ttlMs,
        attempts: 0,
        used_at: null,
        created_at: now,
      });
      return true;
    });
  }

  /** Checks a typed code against the user's newest one; after MAX_CODE_ATTEMPTS guesses it is dead. */
  async checkForUser(userId: number, purpose: CodePurpose, guess: string): Promise<OneTimeCode> {
    const code = await this.ctx.store.latestLiveCode(userId, purpose);
    if (!code) throw CodeMismatch('Invalid verification code provided, please try again.');
    if (code.expires_at <= this.ctx.clock()) throw ExpiredCode('Invalid code provided, please request a code again.');
    if (!(await this.ctx.store.takeCodeAttempt(code.id, MAX_CODE_ATTEMPTS))) {
      throw ExpiredCode('Attempt limit exceeded, please request a code again.');
    }
    if (!safeEqual(hashOf(code.id, guess), code.code_hash)) {
      throw CodeMismatch('Invalid verification code provided, please try again.');
    }
    return code;
  }

  /** Finds a live code by its token; says why when it is unknown, used or expired. */
  async findByToken(purpose: CodePurpose, token: string): Promise<OneTimeCode> {
    const code = await this.ctx.store.codeByHash(purpose, hashOfToken(purpose, token));
    if (!code) throw CodeMismatch('This link is not valid.');
    if (code.used_at !== null) throw ExpiredCode('This link has already been used.');
    if (code.expires_at <= this.ctx.clock()) throw ExpiredCode('This link has expired.');
    return code;
  }
}
