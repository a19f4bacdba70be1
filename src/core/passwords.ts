// Password hashing (argon2id at OWASP's parameters) and the password policy.
// Passwords are NFKC-normalized before hashing and checking (NIST SP 800-63B 5.1.1.2), so
// the same password typed on two keyboards ('ﬁ' or 'fi', full-width or ASCII digits) is one password.
import { hash, Algorithm } from '@node-rs/argon2';
import { identityKey } from '../domain/identity-key.ts';
import { parseHash, verifyHash, type KnownHash } from './hash-formats.ts';
import { PasswordPolicy, RateLimited } from './errors.ts';
import { DEFAULT_FOREIGN_HASH_MAX_COST } from '../domain/foreign-hash-cost.ts';

/** The argon2id parameters of every new hash (OWASP); the bench measures raw hashing with them too. */
export const ARGON2 = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
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
  /** Not checked: the stored hash costs more than the cap (a failed login to the caller; for the operator's trail). */
  overCost?: { format: string; cost: number };
}

/**
 * The work one login may spend on a stored hash, and how many costly (foreign or older) hashes are
 * checked at once. Native hashes at our parameters cost 1 and never queue here, so a storm of logins
 * against costly hashes cannot hold the hashing pool from them.
 */
export interface HashBudget {
  /** Largest cost (hash-formats.ts COST) one login may spend, the raw-form fallback included. */
  maxCost: number;
  /** Costly checks that may run at once, and logins that may wait for one, for at most waitMs. */
  gate: HashGate;
}

/** A bounded semaphore: `limit` at once, `queue` waiting at most `waitMs` each; beyond that, refused. */
export class HashGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(
    readonly limit: number,
    readonly queue: number,
    readonly waitMs: number,
  ) {}

  get inFlight() {
    return this.running;
  }

  /** Runs `work` when a slot is free; throws rate_limited when the queue is full or the wait runs out. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await this.slot();
    else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter (running stays the same), else it frees up.
      if (next) next();
      else this.running--;
    }
  }

  private slot(): Promise<void> {
    const busy = () => RateLimited('Too many sign-ins are being checked right now; try again in a moment.', Math.max(1, Math.ceil(this.waitMs / 1000)));
    if (this.waiting.length >= this.queue) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const granted = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(granted), 1);
        reject(busy());
      }, this.waitMs);
      this.waiting.push(granted);
    });
  }
}

export function hashBudget(maxCost = DEFAULT_FOREIGN_HASH_MAX_COST, concurrency = 1, queue = 16, waitMs = 5_000): HashBudget {
  return { maxCost, gate: new HashGate(concurrency, queue, waitMs) };
}

const defaultBudget = hashBudget();

// Verified against when the user does not exist or has no password, so an unknown
// username costs the same time as a wrong password and cannot be told apart.
let dummyHash: Promise<string> | undefined;

/**
 * The spellings of the password to try, most likely first, within the budget. Latchkey's own
 * argon2 hashes are of the NFKC form, with the raw form for those made before normalization; other
 * systems hashed what was typed, so the raw form comes first. The second check is made only when
 * both fit under the cap: a costly foreign hash is checked once per login.
 */
function spellings(known: KnownHash, password: string, maxCost: number): string[] {
  const normalized = normalizePassword(password);
  if (normalized === password) return [password];
  const both = known.format === 'argon2' ? [normalized, password] : [password, normalized];
  return known.cost * 2 <= maxCost ? both : both.slice(0, 1);
}

/**
 * Checks the password against the stored hash within the budget. An unknown user pays for the same
 * number of checks as a known one with a native hash.
 */
export async function verifyPassword(storedHash: string | null | undefined, password: string, budget: HashBudget = defaultBudget): Promise<PasswordCheck> {
  if (!storedHash) {
    dummyHash ??= hashPassword('latchkey-dummy-password');
    const dummy = await dummyHash;
    const normalized = normalizePassword(password);
    for (const candidate of normalized === password ? [normalized] : [normalized, password]) await verifyHash(dummy, candidate);
    return { ok: false, needsRehash: false };
  }
  const known = parseHash(storedHash);
  if (!known) return { ok: false, needsRehash: false };
  if (known.cost > budget.maxCost) return { ok: false, needsRehash: false, overCost: { format: known.format, cost: Math.round(known.cost) } };
  const candidates = spellings(known, password, budget.maxCost);
  const native = storedHash.startsWith(CURRENT_PREFIX);
  const check = async () => {
    for (const candidate of candidates) {
      if (await known.verify(candidate).catch(() => false)) {
        return { ok: true, needsRehash: !native || candidate !== normalizePassword(password) };
      }
    }
    return { ok: false, needsRehash: false };
  };
  // Native hashes go straight to the pool; every other one waits its turn at the gate.
  return native ? check() : budget.gate.run(check);
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
