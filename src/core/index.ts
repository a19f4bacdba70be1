// The core, assembled: every API and the CLI call these, and nothing else.
import type { Config } from '../platform/config.ts';
import type { Store } from '../store/store.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { Limits } from '../limits/limits.ts';
import type { CoreContext } from './context.ts';
import { KeyRing } from './keys.ts';
import { TokenService } from './tokens.ts';
import { Users } from './users.ts';
import { UserTransfer } from './user-transfer.ts';
import { LazyMigration, type UpstreamLogin } from './migration.ts';
import { Codes } from './codes.ts';
import { Challenges } from './challenges.ts';
import { Sessions } from './sessions.ts';
import { Recovery, RESET_TTL_MS } from './recovery.ts';
import { Guard } from './guard.ts';
import { profiles } from './profiles.ts';
import { Audit, type AuditKind } from './audit.ts';
import type { Background } from '../platform/background.ts';
import { VerifyCache } from './verify-cache.ts';
import { hashBudget, type HashGateStats } from './passwords.ts';

export interface Core {
  /** The kid of the signing key this start created (on a new store), for the start's log. */
  createdKey?: string;
  users: Users;
  transfer: UserTransfer;
  sessions: Sessions;
  recovery: Recovery;
  challenges: Challenges;
  /** Limits and lockouts: the admin's view of them, and unlock. */
  guard: Guard;
  /** The gate costly hash checks pass, as an operator sees it: counts only, no client or name. */
  hashGate: { stats(): HashGateStats };
  keys: KeyRing;
  tokens: TokenService;
  /** What online verification remembers (read-only outside the core: the store's announcements change it). */
  verifyCache: VerifyCache;
  profiles: ReturnType<typeof profiles>;
  store: Store;
  mailer: Mailer;
  background: Background;
  clock: () => number;
  /** Deletes dead codes, sessions no token minted in them can outlive, and old audit events. */
  sweep(): Promise<void>;
}

export interface CoreDeps {
  config: Config;
  store: Store;
  mailer: Mailer;
  limits: Limits;
  background: Background;
  clock?: () => number;
  /** Called for every audit event, for metrics. */
  onEvent?: (kind: AuditKind) => void;
  /** The live service users are migrated from at their first login (LATCHKEY_MIGRATE_FROM). */
  upstream?: UpstreamLogin;
  /** Keys the hashes of one-time codes. */
  secretKey: Buffer;
}

export async function createCore({ config, store, mailer, limits, background, clock = Date.now, onEvent, upstream, secretKey }: CoreDeps): Promise<Core> {
  const l = config.lifetimes;
  /** The longest a signed token lives; refresh tokens are opaque and need no key. */
  const maxTokenTtlMs = Math.max(l.wikimediaAccessTtl, l.roypiTokenTtl, l.ziikTokenTtl) * 1000;
  const audit = new Audit(store, clock, onEvent);
  const keys = new KeyRing(store, {
    secret: config.keySecret,
    alg: config.signingAlg,
    // A retired key stays published as long as the longest-lived token it may have signed.
    retainMs: maxTokenTtlMs,
    clock,
    audit,
  });
  const createdKey = await keys.init();
  const verifyCache = new VerifyCache({ maxEntries: config.verifyCacheEntries, maxAgeMs: config.verifyCacheMaxAgeSeconds * 1000 });
  store.changes.subscribe((changes) => {
    verifyCache.forget(changes);
    if (changes.some((c) => c.of === 'keys')) keys.markStale();
  });
  const tokens = new TokenService(keys, { issuer: config.issuer, audience: config.audience, clock, cache: verifyCache });
  const ctx: CoreContext = {
    store,
    secretKey,
    keys,
    tokens,
    verifyCache,
    mailer,
    clock,
    background,
    audit,
    hashBudget: hashBudget(config.foreignHashMaxCost, config.foreignHashConcurrency, config.foreignHashPerClient, undefined, config.foreignHashPerNetwork),
    settings: { passwordMinLength: config.passwordMinLength, publicUrl: config.publicUrl, codeMaxAttempts: config.codeMaxAttempts,
      liveResetCodes: config.resetMailsPerAccountIp + 1,
    },
    guard: new Guard(limits, {
      ipRateLimit: config.ipRateLimit,
      lockoutThreshold: config.lockoutThreshold,
      lockoutSeconds: config.lockoutSeconds,
      accountSlowdownAfter: config.accountSlowdownAfter,
      accountWindowSeconds: config.accountWindowSeconds,
      accountMaxDelay: config.accountMaxDelay,
      resetMailsPerAccountIp: config.resetMailsPerAccountIp,
      resetMailsPerIp: config.resetRequestsPerIp,
      resetMailsPerAccount: config.resetMailsPerAccount,
      codeAttemptsPerIp: config.codeAttemptsPerIp,
      codeWindowSeconds: RESET_TTL_MS / 1000,
    }),
  };
  const users = new Users(ctx);
  const codes = new Codes(ctx);
  const challenges = new Challenges(ctx, codes, users);
  return {
    createdKey,
    users,
    transfer: new UserTransfer(ctx),
    challenges,
    sessions: new Sessions(ctx, users, challenges, upstream && new LazyMigration(ctx, upstream)),
    recovery: new Recovery(ctx, codes, users),
    guard: ctx.guard,
    hashGate: { stats: () => ctx.hashBudget.gate.stats() },
    keys,
    tokens,
    verifyCache,
    profiles: profiles(config),
    store,
    mailer,
    background,
    clock,
    async sweep() {
      const now = clock();
      // An access token may outlive its session's refresh window by up to its own lifetime.
      await store.deleteExpired({
        codesBefore: now,
        sessionsBefore: now - maxTokenTtlMs,
        auditBefore: now - config.auditRetentionDays * 86_400_000,
      });
      // Keys past their retention verify nothing any more (keys.ts); their rows can go too.
      await store.deleteKeysRetiredBefore(now - maxTokenTtlMs);
      await limits.tallies.sweep(now);
    },
  };
}
