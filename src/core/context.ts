// What every core module is handed: the store, keys, tokens, mail, counters, settings, time.
import type { Store } from '../store/store.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { KeyRing } from './keys.ts';
import type { TokenService } from './tokens.ts';
import type { Counter } from './limits.ts';
import type { Audit } from './audit.ts';
import type { Background } from '../background.ts';
import type { VerifyCache } from './verify-cache.ts';

export interface RequestContext {
  ip?: string;
  userAgent?: string;
}

export interface CoreSettings {
  passwordMinLength: number;
  publicUrl: string;
}

export interface Counters {
  /** Password checks per login name, cleared by a success: the lockout. */
  loginAttempts: Counter;
  /** Credential attempts per client IP. */
  perIp: Counter;
  /** Reset mails per account, so nobody can mail-bomb a user. */
  resetMails: Counter;
}

export interface CoreContext {
  store: Store;
  keys: KeyRing;
  tokens: TokenService;
  /** Verified tokens, sessions and users, kept true by the store's change feed. */
  verifyCache: VerifyCache;
  mailer: Mailer;
  counters: Counters;
  settings: CoreSettings;
  audit: Audit;
  background: Background;
  clock: () => number;
}

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
