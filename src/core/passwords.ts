// Password hashing (argon2id at OWASP's parameters) and the password policy.
import { hash, verify, Algorithm } from '@node-rs/argon2';
import { PasswordPolicy } from './errors.ts';

const ARGON2 = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Longer inputs only cost CPU; no password manager produces one. */
export const MAX_PASSWORD_LENGTH = 256;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2);
}

// Verified against when the user does not exist or has no password, so an unknown
// username costs the same time as a wrong password and cannot be told apart.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | null | undefined, password: string): Promise<boolean> {
  if (!storedHash) {
    dummyHash ??= hashPassword('latchkey-dummy-password');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verify(storedHash, password);
  } catch {
    return false;
  }
}

export interface PasswordPolicyOptions {
  minLength: number;
}

/** Length-based policy, as NIST SP 800-63B recommends: no composition rules. */
export function checkPasswordPolicy(password: string, options: PasswordPolicyOptions, username?: string): void {
  const length = [...password].length;
  if (length < options.minLength) {
    throw PasswordPolicy(`Password must be at least ${options.minLength} characters long.`);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw PasswordPolicy(`Password must be at most ${MAX_PASSWORD_LENGTH} characters long.`);
  }
  if (password.trim() === '') {
    throw PasswordPolicy('Password must not be blank.');
  }
  if (username && password.toLowerCase() === username.toLowerCase()) {
    throw PasswordPolicy('Password must not be the same as the username.');
  }
}
