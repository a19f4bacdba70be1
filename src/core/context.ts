// What every core module is handed: the store, keys, tokens, mail, counters, settings, time.
import type { Store } from '../store/store.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { KeyRing } from './keys.ts';
import type { TokenService } from './tokens.ts';
import type { Guard } from './guard.ts';
import type { Audit } from './audit.ts';
import type { Background } from '../platform/background.ts';
import type { VerifyCache } from './verify-cache.ts';
import type { HashBudget } from './passwords.ts';

export interface RequestContext {
  ip?: string;
  userAgent?: string;
}

export interface CoreSettings {
  passwordMinLength: number;
  publicUrl: string;
  /** Wrong guesses one reset code takes, from everywhere, before it dies. */
  codeMaxAttempts: number;
  /** Reset codes (and links) of one account that stay valid at once: more than one IP may cause in an hour. */
  liveResetCodes: number;
}

export interface CoreContext {
  store: Store;
  keys: KeyRing;
  tokens: TokenService;
  /** Verified tokens, sessions and users, kept true by the store's change feed. */
  verifyCache: VerifyCache;
  mailer: Mailer;
  /** The limits on every unauthenticated path. */
  guard: Guard;
  /** The work a login may spend on a stored hash, and the gate costly hashes queue at. */
  hashBudget: HashBudget;
  settings: CoreSettings;
  /** Keys the hashes of one-time codes; never in the database (src/platform/data-dir.ts). */
  secretKey: Buffer;
  audit: Audit;
  background: Background;
  clock: () => number;
}

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
