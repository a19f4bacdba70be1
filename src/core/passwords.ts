// Password hashing (argon2id at OWASP's parameters) and the password policy.
// Passwords are NFKC-normalized before hashing and checking (NIST SP 800-63B 5.1.1.2), so
// the same password typed on two keyboards ('ﬁ' or 'fi', full-width or ASCII digits) is one password.
import { hash, Algorithm } from '@node-rs/argon2';
import { identityKey } from './identity.ts';
import { verifyHash } from './hash-formats.ts';
import { PasswordPolicy } from './errors.ts';

const ARGON2 = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
/** The PHC prefix of a hash made at exactly our parameters; anything else is upgraded at login. */
const CURRENT_PREFIX = `$argon2id$v=19$m=${ARGON2.memoryCost},t=${ARGON2.timeCost},p=${ARGON2.parallelism}$`;

/** Longer inputs only cost CPU; no password manager produces one. */
export const MAX_PASSWORD_LENGTH = 256;

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

export function hashPassword(password: string): Promise<string> {
  return hash(normalizePassword(password), ARGON2);
}

export interface PasswordCheck {
  ok: boolean;
  /** The password matched, but its hash is not argon2id at our parameters of the normalized form (a raw,
   * foreign or older hash): store a new one. */
  needsRehash: boolean;
}

// Verified against when the user does not exist or has no password, so an unknown
// username costs the same time as a wrong password and cannot be told apart.
let dummyHash: Promise<string> | undefined;

/**
 * Checks the normalized password, then (for hashes made before normalization) the raw one when
 * it differs. An unknown user pays for the same number of checks as a known one.
 */
export async function verifyPassword(storedHash: string | null | undefined, password: string): Promise<PasswordCheck> {
  const normalized = normalizePassword(password);
  const candidates = normalized === password ? [normalized] : [normalized, password];
  if (!storedHash) {
    dummyHash ??= hashPassword('latchkey-dummy-password');
    const dummy = await dummyHash;
    for (const candidate of candidates) await verifyHash(dummy, candidate);
    return { ok: false, needsRehash: false };
  }
  for (const [index, candidate] of candidates.entries()) {
    if (await verifyHash(storedHash, candidate)) {
      return { ok: true, needsRehash: index > 0 || !storedHash.startsWith(CURRENT_PREFIX) };
    }
  }
  return { ok: false, needsRehash: false };
}

export interface PasswordPolicyOptions {
  minLength: number;
}

/** Length-based policy, as NIST SP 800-63B recommends: no composition rules; counts the normalized form. */
export function checkPasswordPolicy(password: string, options: PasswordPolicyOptions, username?: string): void {
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < options.minLength) {
    throw PasswordPolicy(`Password must be at least ${options.minLength} characters long.`);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw PasswordPolicy(`Password must be at most ${MAX_PASSWORD_LENGTH} characters long.`);
  }
  if (normalized.trim() === '') {
    throw PasswordPolicy('Password must not be blank.');
  }
  if (username && identityKey(normalized) === identityKey(username)) {
    throw PasswordPolicy('Password must not be the same as the username.');
  }
}
