// The password hash formats Latchkey can check: its own argon2id, and the formats of the systems
// users come from (Django, PHP/Laravel/Rails bcrypt, PHC strings from argon2 and scrypt tools).
// Each is verified by a library made for it or by node:crypto, on libuv's thread pool (never on the
// event loop), with a constant-time comparison. Work factors are bounded so an imported hash cannot
// make one login cost minutes; a hash outside the bounds is an unknown format, refused at import.
// Within them, each hash has a cost (hashCost below) that the caller holds to its own cap.
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { verify as argon2Verify } from '@node-rs/argon2';
import { verify as bcryptVerify } from '@node-rs/bcrypt';

export type HashFormat =
  | 'argon2'
  | 'bcrypt'
  | 'scrypt'
  | 'django_pbkdf2_sha256'
  | 'django_pbkdf2_sha1'
  | 'django_argon2'
  | 'django_bcrypt'
  | 'django_bcrypt_sha256'
  | 'django_scrypt';

export interface KnownHash {
  format: HashFormat;
  /** The work of one check, in default argon2id checks (see hashCost). */
  cost: number;
  /** True when `password` is the one this hash was made from. */
  verify(password: string): Promise<boolean>;
}

const LIMITS = {
  argon2MemoryKiB: 262_144,
  argon2Time: 16,
  argon2Parallelism: 16,
  bcryptCost: 17,
  pbkdf2Iterations: 10_000_000,
  /** scrypt needs 128·N·r bytes. */
  scryptMemoryBytes: 256 * 1024 * 1024,
  scryptParallelism: 16,
} as const;

/**
 * The work of one check, as a multiple of one check of Latchkey's own argon2id (m=19456 KiB, t=2:
 * 38,912 KiB-passes over memory), from the parameters alone, never by timing. Every factor that
 * multiplies the work counts; the constants were calibrated against that argon2id check on the
 * hashing pool (one thread each):
 * - argon2 (i, d, id): m·t / 38,912. p splits the same m·t into lanes (it adds threads, not work);
 *   it is bounded by LIMITS.argon2Parallelism.
 * - bcrypt: 2^cost / 232 (cost 12 is about 18).
 * - PBKDF2: iterations · blocks · 14 / 10^6, blocks = ceil(output bytes / digest bytes) (each block is
 *   a full run of the iterations): Django's 1,000,000 iterations of SHA-256 (one block) is 14.
 * - scrypt: N·r·p · 5 / 2^17 (N=2^14, r=8, p=1 is 5); its memory, 128·N·r bytes, is bounded too.
 */
export const COST = {
  argon2: (m: number, t: number) => (m * t) / (19_456 * 2),
  bcrypt: (cost: number) => 2 ** cost / 232,
  pbkdf2: (iterations: number, outputBytes: number, digestBytes: number) => (iterations * Math.ceil(outputBytes / digestBytes) * 14) / 1e6,
  scrypt: (n: number, r: number, p: number) => (n * r * p * 5) / 2 ** 17,
} as const;

const pbkdf2 = promisify(crypto.pbkdf2);
const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

const B64 = '[A-Za-z0-9+/]+={0,2}';
/** Django salts are printable ASCII without '$' (get_random_string). */
const SALT = '[\\x21-\\x23\\x25-\\x7e]{1,128}';
/** PHC strings use unpadded base64; passlib writes '.' for '+'. */
const PHC_B64 = '[A-Za-z0-9+/.]+';
const ARGON2_PHC = new RegExp(`^\\$argon2(?:id|i|d)\\$(?:v=(?:16|19)\\$)?m=(\\d{1,7}),t=(\\d{1,3}),p=(\\d{1,3})\\$${PHC_B64}\\$${PHC_B64}$`);
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const SCRYPT_PHC = new RegExp(`^\\$scrypt\\$ln=(\\d{1,2}),r=(\\d{1,3}),p=(\\d{1,3})\\$(${PHC_B64})\\$(${PHC_B64})$`);
const DJANGO_PBKDF2 = new RegExp(`^pbkdf2_(sha256|sha1)\\$(\\d{1,8})\\$(${SALT})\\$(${B64})$`);
const DJANGO_SCRYPT = new RegExp(`^scrypt\\$(${SALT})\\$(\\d{1,8})\\$(\\d{1,3})\\$(\\d{1,3})\\$(${B64})$`);

const phcBytes = (text: string) => Buffer.from(text.replaceAll('.', '+'), 'base64');

/** Equal-length buffers compared in constant time; a length mismatch is a plain mismatch. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

type Check = { cost: number; verify: (password: string) => Promise<boolean> };

function argon2(stored: string): Check | undefined {
  const match = ARGON2_PHC.exec(stored);
  if (!match) return undefined;
  const [m, t, p] = match.slice(1).map(Number);
  if (m > LIMITS.argon2MemoryKiB || t < 1 || t > LIMITS.argon2Time || p < 1 || p > LIMITS.argon2Parallelism) return undefined;
  return { cost: COST.argon2(m, t), verify: (password) => argon2Verify(stored, password) };
}

function bcrypt(stored: string, prepare: (password: string) => string = (p) => p): Check | undefined {
  const match = BCRYPT.exec(stored);
  if (!match) return undefined;
  const cost = Number(match[1]);
  if (cost < 4 || cost > LIMITS.bcryptCost) return undefined;
  return { cost: COST.bcrypt(cost), verify: (password) => bcryptVerify(prepare(password), stored) };
}

function scryptCheck(n: number, r: number, p: number, salt: Buffer, expected: Buffer): Check | undefined {
  const powerOfTwo = n > 1 && (n & (n - 1)) === 0;
  const memory = 128 * n * r;
  if (!powerOfTwo || r < 1 || p < 1 || p > LIMITS.scryptParallelism || memory > LIMITS.scryptMemoryBytes) return undefined;
  if (expected.length < 16 || expected.length > 128) return undefined;
  return {
    cost: COST.scrypt(n, r, p),
    verify: async (password) => {
      const derived = await scrypt(password, salt, expected.length, { N: n, r, p, maxmem: 2 * memory + 1024 * 1024 });
      return sameBytes(derived, expected);
    },
  };
}

function parse(stored: string): KnownHash | undefined {
  const known = (format: HashFormat, check: Check | undefined): KnownHash | undefined => (check ? { format, ...check } : undefined);

  if (stored.startsWith('$argon2')) return known('argon2', argon2(stored));
  if (stored.startsWith('$2')) return known('bcrypt', bcrypt(stored));
  if (stored.startsWith('$scrypt$')) {
    const match = SCRYPT_PHC.exec(stored);
    if (!match) return undefined;
    const [ln, r, p] = match.slice(1, 4).map(Number);
    return known('scrypt', ln < 31 ? scryptCheck(2 ** ln, r, p, phcBytes(match[4]), phcBytes(match[5])) : undefined);
  }
  // Django: "<algorithm>$<its own fields>" (django.contrib.auth.hashers).
  if (stored.startsWith('argon2$')) return known('django_argon2', argon2(stored.slice('argon2'.length)));
  if (stored.startsWith('bcrypt$')) return known('django_bcrypt', bcrypt(stored.slice('bcrypt$'.length)));
  if (stored.startsWith('bcrypt_sha256$')) {
    // Django hashes the password with SHA-256 first (to lift bcrypt's 72-byte limit) and bcrypts the hex digest.
    const sha256Hex = (password: string) => crypto.createHash('sha256').update(password, 'utf8').digest('hex');
    return known('django_bcrypt_sha256', bcrypt(stored.slice('bcrypt_sha256$'.length), sha256Hex));
  }
  const pbkdf2Match = DJANGO_PBKDF2.exec(stored);
  if (pbkdf2Match) {
    const [, digest, iterationsText, salt, hashText] = pbkdf2Match;
    const iterations = Number(iterationsText);
    const expected = Buffer.from(hashText, 'base64');
    if (iterations < 1 || iterations > LIMITS.pbkdf2Iterations || expected.length < 16 || expected.length > 64) return undefined;
    return known(`django_pbkdf2_${digest}` as HashFormat, {
      cost: COST.pbkdf2(iterations, expected.length, digest === 'sha256' ? 32 : 20),
      verify: async (password) => sameBytes(await pbkdf2(password, salt, iterations, expected.length, digest), expected),
    });
  }
  const scryptMatch = DJANGO_SCRYPT.exec(stored);
  if (scryptMatch) {
    const [, salt, n, r, p, hashText] = scryptMatch;
    return known('django_scrypt', scryptCheck(Number(n), Number(r), Number(p), Buffer.from(salt, 'utf8'), Buffer.from(hashText, 'base64')));
  }
  return undefined;
}

/** What a stored hash is and how to check it, or undefined for a format (or work factor) not supported. */
export function parseHash(stored: string): KnownHash | undefined {
  if (stored.length > 1024) return undefined;
  return parse(stored);
}

/** Checks `password` against any supported hash; false (never a throw) for a mismatch or an unknown format. */
export async function verifyHash(stored: string, password: string): Promise<boolean> {
  const known = parseHash(stored);
  if (!known) return false;
  try {
    return await known.verify(password);
  } catch {
    return false;
  }
}
