// Random secrets and how they are kept: only hashes reach the store.
import crypto from 'node:crypto';
import { KeySecretMismatch } from './errors.ts';

/** 256-bit random token, URL-safe. */
export function randomToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** A numeric code a person can type from an email. */
export function randomDigits(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += crypto.randomInt(0, 10).toString();
  return out;
}

export function randomId(): string {
  return crypto.randomUUID();
}

/** SHA-256, hex. Enough for 256-bit random tokens; short codes are also bound to their row. */
export function sha256(value: string): string {
  return crypto.createHash('sha256').update(value).digest('hex');
}

/** HMAC-SHA-256, hex: a hash that a copy of the database alone cannot reverse, even for a 6-digit code. */
export function keyedHash(key: Buffer, value: string): string {
  return crypto.createHmac('sha256', key).update(value).digest('hex');
}

export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && crypto.timingSafeEqual(left, right);
}

// Private keys at rest: AES-256-GCM under a key derived from LATCHKEY_KEY_SECRET.
const SEALED_PREFIX = 'enc:v1:';

function sealingKey(secret: string): Buffer {
  return crypto.scryptSync(secret, 'latchkey-signing-keys', 32);
}

export function seal(plaintext: string, secret: string | undefined): string {
  if (!secret) return plaintext;
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', sealingKey(secret), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function unseal(stored: string, secret: string | undefined): string {
  if (!stored.startsWith(SEALED_PREFIX)) return stored;
  if (!secret) {
    throw new KeySecretMismatch('LATCHKEY_KEY_SECRET is not set, but the signing keys in this store are sealed with one: set it to the secret the store was set up with');
  }
  const raw = Buffer.from(stored.slice(SEALED_PREFIX.length), 'base64');
  const decipher = crypto.createDecipheriv('aes-256-gcm', sealingKey(secret), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  try {
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    // GCM's "unable to authenticate data": another secret sealed these keys.
    throw new KeySecretMismatch(
      'LATCHKEY_KEY_SECRET does not open the signing keys in this store (they were sealed with another secret): set it back to the secret the store was set up with; without it the keys cannot be read',
    );
  }
}
