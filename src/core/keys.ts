// Signing keys: created on first start, kept in the store (sealed when a secret is set),
// published as a JWKS for offline verification, rotated by `latchkey keys rotate`.
import crypto from 'node:crypto';
import { exportJWK, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Store } from '../store/store.ts';
import { seal, unseal } from './secrets.ts';
import { KeyNotFound } from './errors.ts';
import type { Audit } from './audit.ts';
import type { SigningAlg } from '../domain/signing-algs.ts';

// Public keys are held as WebCrypto CryptoKeys, imported once, for jose's verification; the
// private key as a KeyObject for node:crypto, which signs faster than jose (src/core/jws.ts).
export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: crypto.KeyObject;
}

interface LoadedKey {
  kid: string;
  alg: SigningAlg;
  publicKey: CryptoKey;
  jwk: JWK;
  retiredAt: number | null;
  sealedPrivate: string;
}

function generate(alg: SigningAlg) {
  switch (alg) {
    case 'EdDSA':
      return crypto.generateKeyPairSync('ed25519');
    case 'ES256':
      return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'RS256':
      return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  }
}

/**
 * How often a running instance reads the keys again whatever it heard: the bound on how long
 * another instance may go on accepting a key the CLI or another instance withdrew, should the
 * store's change announcement (src/store/changes.ts) not reach it.
 */
export const RELOAD_EVERY_MS = 60_000;
/** How long resource servers may cache the JWKS (its Cache-Control max-age). */
export const JWKS_MAX_AGE_SECONDS = 300;
/**
 * A new key is published this long before anything signs with it, so every instance and every
 * resource server's cached JWKS knows it before the first token it signed arrives.
 */
export const PUBLISH_AHEAD_MS = RELOAD_EVERY_MS + JWKS_MAX_AGE_SECONDS * 1000;
/** An unknown kid triggers a reload at most this often, so junk tokens cannot hammer the store. */
const MISS_RELOAD_MS = 5_000;

export class KeyRing {
  private keys: LoadedKey[] = [];
  private signing?: SigningKey;
  private loadedAt = 0;
  private lastMissReload = 0;
  /** A reload in progress, which concurrent callers share instead of each querying the store. */
  private loading?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly options: { secret?: string; alg: SigningAlg; retainMs: number; clock: () => number; audit?: Audit },
  ) {}

  /** Loads keys, creating the first one when the store has none; answers that one's kid. */
  async init(): Promise<string | undefined> {
    await this.load();
    if (!this.keys.some((k) => k.retiredAt === null)) {
      return this.rotate();
    }
    return undefined;
  }

  /**
   * Adds a new key. It is published at once and signs from PUBLISH_AHEAD_MS on (at once when it
   * is the first); the keys it replaces stay published until the tokens they signed have expired.
   */
  async rotate(alg: SigningAlg = this.options.alg): Promise<string> {
    const now = this.options.clock();
    const kid = await this.store.transaction(async (tx) => {
      const kid = await this.insertNewKey(tx, alg, now);
      await tx.retireKeys(now + PUBLISH_AHEAD_MS, kid);
      return kid;
    });
    await this.store.deleteKeysRetiredBefore(now - this.options.retainMs);
    // A fresh read, not a shared one that may have started before the insert.
    await this.readKeys();
    return kid;
  }

  /**
   * Withdraws a key now (a compromise): its row is deleted, so from this moment no path on this
   * instance accepts a token it signed and the JWKS no longer lists it; other instances drop it
   * when they hear of the change, and within RELOAD_EVERY_MS whatever happens. If no remaining
   * key is set to sign on, a new one is made and signs at once (when nothing else may sign
   * meanwhile): it cannot be published ahead, since the key it replaces must not sign another
   * token. Returns the key that signs from now on.
   */
  async withdraw(kid: string): Promise<{ kid: string; signingKid: string }> {
    const now = this.options.clock();
    const successor = await this.store.transaction(async (tx) => {
      if (!(await tx.deleteKey(kid))) return undefined;
      await this.options.audit?.record({ kind: 'key_withdrawn', userId: null, detail: kid }, tx);
      const rows = await tx.listKeys();
      // A key not due to retire takes over (at once when the withdrawn one was signing).
      if (rows.some((row) => row.retired_at === null)) return null;
      return this.insertNewKey(tx, this.options.alg, now);
    });
    if (successor === undefined) throw KeyNotFound('No such signing key.');
    await this.readKeys();
    if (!this.signing || this.signing.kid === kid) throw new Error('no signing key after withdrawing one');
    return { kid, signingKid: this.signing.kid };
  }

  private async insertNewKey(tx: Store, alg: SigningAlg, now: number): Promise<string> {
    const { privateKey, publicKey } = generate(alg);
    // Never with a leading '-': an operator pastes kids into `latchkey keys retire <kid>`.
    let kid: string;
    do kid = crypto.randomBytes(12).toString('base64url');
    while (kid.startsWith('-'));
    const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await tx.insertKey({
      kid,
      alg,
      private_key: seal(pem, this.options.secret),
      public_jwk: JSON.stringify(jwk),
      created_at: now,
      retired_at: null,
    });
    return kid;
  }

  private load(): Promise<void> {
    this.loading ??= this.readKeys().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async readKeys(): Promise<void> {
    const rows = await this.store.listKeys();
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    this.keys = await Promise.all(
      rows.map(async (row) => {
        const jwk = JSON.parse(row.public_jwk) as JWK;
        const alg = row.alg as SigningAlg;
        return {
          kid: row.kid,
          alg,
          jwk,
          publicKey: known.get(row.kid)?.publicKey ?? ((await importJWK(jwk, alg)) as CryptoKey),
          retiredAt: row.retired_at,
          sealedPrivate: row.private_key,
        };
      }),
    );
    this.loadedAt = this.options.clock();
    await this.pickSigningKey();
  }

  /** The oldest key not yet retired signs: a successor takes over when its predecessor retires. */
  private async pickSigningKey(): Promise<void> {
    const now = this.options.clock();
    const live = this.keys.filter((k) => k.retiredAt === null || k.retiredAt > now);
    const current = live[live.length - 1];
    // Never sign on with a key that was withdrawn or has retired, whatever comes after.
    if (!current) this.signing = undefined;
    else if (current.kid !== this.signing?.kid) {
      this.signing = {
        kid: current.kid,
        alg: current.alg,
        privateKey: crypto.createPrivateKey(unseal(current.sealedPrivate, this.options.secret)),
      };
    }
  }

  /** The keys changed in the store (here or elsewhere): the next use reads them again. */
  markStale(): void {
    this.loadedAt = -Infinity;
    this.loading = undefined;
  }

  private async maybeReload(): Promise<void> {
    if (this.options.clock() - this.loadedAt > RELOAD_EVERY_MS) await this.load();
  }

  async signingKey(): Promise<SigningKey> {
    await this.maybeReload();
    // A successor may have come of age since the last load.
    await this.pickSigningKey();
    if (!this.signing) throw new Error('no signing key: run `latchkey keys rotate`');
    return this.signing;
  }

  /** Whether a key may still verify: not withdrawn (its row is gone) and not retired longer ago than the retention. */
  private verifies(key: LoadedKey, now: number): boolean {
    return key.retiredAt === null || key.retiredAt > now - this.options.retainMs;
  }

  /** The public key for a kid, or undefined when no key that may still verify has it. */
  async verificationKey(kid: string | undefined): Promise<{ key: CryptoKey; alg: SigningAlg } | undefined> {
    await this.maybeReload();
    let found = this.keys.find((k) => k.kid === kid);
    const now = this.options.clock();
    if (!found && kid && now - this.lastMissReload > MISS_RELOAD_MS) {
      this.lastMissReload = now;
      await this.load();
      found = this.keys.find((k) => k.kid === kid);
    }
    return found && this.verifies(found, now) ? { key: found.publicKey, alg: found.alg } : undefined;
  }

  /**
   * Whether a token signed by `kid` (its signature checked earlier and remembered) may still be
   * accepted: the key may have been withdrawn or outlived its retention since.
   */
  async stillVerifies(kid: string | undefined): Promise<boolean> {
    await this.maybeReload();
    const found = this.keys.find((k) => k.kid === kid);
    return found !== undefined && this.verifies(found, this.options.clock());
  }

  /** Every key a live token may have been signed with. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.maybeReload();
    const now = this.options.clock();
    return { keys: this.keys.filter((k) => this.verifies(k, now)).map((k) => k.jwk) };
  }

  list() {
    return this.keys.map((k) => ({
      kid: k.kid,
      alg: k.alg,
      signing: k.kid === this.signing?.kid,
      retired_at: k.retiredAt === null ? null : new Date(k.retiredAt).toISOString(),
    }));
  }
}
