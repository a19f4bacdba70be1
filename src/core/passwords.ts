// Password hashing (argon2id at OWASP's parameters) and the password policy.
// Passwords are NFKC-normalized before hashing and checking (NIST SP 800-63B 5.1.1.2), so
// the same password typed on two keyboards ('ﬁ' or 'fi', full-width or ASCII digits) is one password.
import { hash, Algorithm } from '@node-rs/argon2';
import { identityKey } from '../domain/identity-key.ts';
import { parseHash, verifyHash, type KnownHash } from './hash-formats.ts';
import { PasswordPolicy, RateLimited } from './errors.ts';
import { DEFAULT_FOREIGN_HASH_MAX_COST, DEFAULT_FOREIGN_HASH_PER_CLIENT, DEFAULT_FOREIGN_HASH_PER_NETWORK } from '../domain/foreign-hash-cost.ts';
import { networksOf } from '../limits/client-key.ts';

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
  /** Costly checks that may run at once, and each client's share of places, for at most waitMs each. */
  gate: HashGate;
}

/** What an operator (and a test) may see of the gate: no client, no name. */
export interface HashGateStats {
  /** Costly checks running now. */
  running: number;
  /** Costly checks waiting for a running slot. */
  waiting: number;
  /** Costly checks run to their end since the start. */
  checked: number;
  /** Logins refused since the start: their client or its network held its share, the queue could not clear in time, or their wait ran out. */
  refused: number;
}

/** The client of a check that names none: one share for all of them. */
const ANONYMOUS = '-';
/** How much each check's duration moves the mean the gate judges its queue by. */
const MEAN_WEIGHT = 0.2;

/**
 * The gate costly hash checks pass: `limit` run at once, each waiting at most `waitMs`. Places
 * (running or waiting) are shared out by nested networks: a client (its limit key: an IPv6 client
 * by its /64, src/limits/client-key.ts) holds at most `share`, its /56 at most `networkShare`, its
 * /48 (an IPv4 client's /24) at most twice that. So one holder of many addresses in one network is
 * refused itself, never another client (INVARIANTS 9), and a client waits behind a bounded number
 * of places per network ahead of it.
 * `admit` decides before anything about the name is known, by the client's places and the gate's
 * own state: it refuses a client at any of its shares, and every client while the queue could not
 * clear within the wait (judged by the mean check's duration), whatever hash the name has or
 * whether it exists, so a refusal tells nothing of which names are imported (INVARIANTS 10).
 */
export class HashGate {
  private running = 0;
  private checked = 0;
  private refusals = 0;
  /** Mean duration of a check, ms (0 before the first). */
  private meanMs = 0;
  private readonly waiting: Array<() => void> = [];
  /** Places (running or waiting) each client and network holds; one without any is not in the map. */
  private readonly held = new Map<string, number>();
  constructor(
    readonly limit: number,
    readonly share: number,
    readonly waitMs: number,
    readonly networkShare: number = DEFAULT_FOREIGN_HASH_PER_NETWORK,
  ) {}

  get inFlight() {
    return this.running;
  }

  stats(): HashGateStats {
    return { running: this.running, waiting: this.waiting.length, checked: this.checked, refused: this.refusals };
  }

  /** Throws rate_limited, synchronously, when the client or a network of it holds its share, or the queue is past its wait. */
  admit(client: string): void {
    if (this.places(client).some(({ key, share }) => (this.held.get(key) ?? 0) >= share) || this.saturated()) throw this.busy();
  }

  /** Runs `work` when a slot is free; throws rate_limited when `admit` refuses or the wait runs out. */
  async run<T>(work: () => Promise<T>, client: string = ANONYMOUS): Promise<T> {
    // Admission and taking the places are one synchronous step: racing logins of one client cannot all pass.
    this.admit(client);
    const places = this.places(client);
    for (const { key } of places) this.hold(key, 1);
    try {
      if (this.running >= this.limit) await this.slot();
      else this.running++;
      const started = performance.now();
      try {
        return await work();
      } finally {
        this.checked++;
        const took = performance.now() - started;
        this.meanMs = this.meanMs === 0 ? took : this.meanMs + MEAN_WEIGHT * (took - this.meanMs);
        const next = this.waiting.shift();
        // The slot passes straight to the next waiter (running stays the same), else it frees up.
        if (next) next();
        else this.running--;
      }
    } finally {
      for (const { key } of places) this.hold(key, -1);
    }
  }

  /** The places a client's check takes: its own, and one in each network it lies in. */
  private places(client: string): { key: string; share: number }[] {
    const networks = networksOf(client).map(({ key, prefix }) => ({ key, share: prefix === 56 ? this.networkShare : 2 * this.networkShare }));
    return [{ key: client, share: this.share }, ...networks];
  }

  /** Whether a newcomer would wait past waitMs behind the checks queued now. */
  private saturated(): boolean {
    if (this.running < this.limit || !Number.isFinite(this.waitMs)) return false;
    return Math.ceil((this.waiting.length + 1) / this.limit) * this.meanMs > this.waitMs;
  }

  private hold(key: string, change: 1 | -1) {
    const places = (this.held.get(key) ?? 0) + change;
    if (places > 0) this.held.set(key, places);
    else this.held.delete(key);
  }

  private busy() {
    this.refusals++;
    return RateLimited('Too many sign-ins are being checked right now; try again in a moment.', Number.isFinite(this.waitMs) ? Math.max(1, Math.ceil(this.waitMs / 1000)) : 1);
  }

  private slot(): Promise<void> {
    return new Promise((resolve, reject) => {
      const granted = () => {
        clearTimeout(timer);
        resolve();
      };
      // An operator's gate (waitMs Infinity) waits its turn however long; setTimeout would fire at once.
      const timer = Number.isFinite(this.waitMs)
        ? setTimeout(() => {
            this.waiting.splice(this.waiting.indexOf(granted), 1);
            reject(this.busy());
          }, this.waitMs)
        : undefined;
      this.waiting.push(granted);
    });
  }
}

export function hashBudget(
  maxCost = DEFAULT_FOREIGN_HASH_MAX_COST,
  concurrency = 1,
  share = DEFAULT_FOREIGN_HASH_PER_CLIENT,
  waitMs = 5_000,
  networkShare = DEFAULT_FOREIGN_HASH_PER_NETWORK,
): HashBudget {
  return { maxCost, gate: new HashGate(concurrency, share, waitMs, networkShare) };
}

const defaultBudget = hashBudget();

/**
 * Where an operator's import compares passwords: one costly check at a time, however long the
 * batch, and never at the login gate (a batch would fill its share, and logins would wait on it).
 */
const operatorBudget: HashBudget = { maxCost: DEFAULT_FOREIGN_HASH_MAX_COST, gate: new HashGate(1, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY) };

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

export interface CheckOptions {
  /** The client's limit key (src/core/guard.ts clientKey): its share at the gate. */
  client?: string;
  /** Runs as the check starts, after any wait at the gate: a check turned away never reaches it. */
  beforeCheck?: () => Promise<void>;
}

/**
 * Checks the password against the stored hash within the budget. An unknown user pays for the same
 * number of checks as a known one with a native hash. A client at its share of the gate is refused
 * first, whatever the stored hash (or none), so a refusal tells nothing of the name.
 */
export async function verifyPassword(
  storedHash: string | null | undefined,
  password: string,
  budget: HashBudget = defaultBudget,
  options: CheckOptions = {},
): Promise<PasswordCheck> {
  const client = options.client ?? ANONYMOUS;
  const beforeCheck = options.beforeCheck ?? (async () => {});
  budget.gate.admit(client);
  if (!storedHash) {
    await beforeCheck();
    dummyHash ??= hashPassword('latchkey-dummy-password');
    const dummy = await dummyHash;
    const normalized = normalizePassword(password);
    for (const candidate of normalized === password ? [normalized] : [normalized, password]) await verifyHash(dummy, candidate);
    return { ok: false, needsRehash: false };
  }
  const known = parseHash(storedHash);
  if (!known || known.cost > budget.maxCost) {
    await beforeCheck();
    if (!known) return { ok: false, needsRehash: false };
    return { ok: false, needsRehash: false, overCost: { format: known.format, cost: Math.round(known.cost) } };
  }
  const candidates = spellings(known, password, budget.maxCost);
  const native = storedHash.startsWith(CURRENT_PREFIX);
  const check = async () => {
    await beforeCheck();
    for (const candidate of candidates) {
      if (await known.verify(candidate).catch(() => false)) {
        return { ok: true, needsRehash: !native || candidate !== normalizePassword(password) };
      }
    }
    return { ok: false, needsRehash: false };
  };
  // Native hashes go straight to the pool; every other one waits its turn at the gate.
  return native ? check() : budget.gate.run(check, client);
}

/**
 * Whether the stored hash is of this password, for an operator's import ("did the password
 * change?"): the same check, in the import's own lane (one costly check at a time), never at the
 * login gate. No anonymous request reaches it.
 */
export async function isStoredPassword(storedHash: string | null, password: string, maxCost: number): Promise<boolean> {
  return (await verifyPassword(storedHash, password, { ...operatorBudget, maxCost })).ok;
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
