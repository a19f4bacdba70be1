// The one place that reads the environment. Everything else receives a Config.
import path from 'node:path';
import { SIGNING_ALGS, type SigningAlg } from './core/keys.ts';
import { DEFAULT_FOREIGN_HASH_MAX_COST, FOREIGN_HASH_MAX_COST_CEILING } from './core/passwords.ts';
import { INSTALL_ROOT } from './install.ts';
import { isStrongSecret, SECRET_RULE } from './secret-strength.ts';

export interface DialectLifetimes {
  /** Wikimedia Enterprise: access and ID token lifetime, seconds. */
  wikimediaAccessTtl: number;
  /** Wikimedia Enterprise: refresh token lifetime, seconds. */
  wikimediaRefreshTtl: number;
  /** Wikimedia Enterprise: access tokens one refresh token may mint. */
  wikimediaRefreshLimit: number;
  /** Roypi: token lifetime, seconds. */
  roypiTokenTtl: number;
  /** Roypi: how long after the original login a token may still be refreshed, seconds. */
  roypiRefreshWindow: number;
  /** Ziik: token lifetime, seconds. */
  ziikTokenTtl: number;
  /** Ziik: how long a login may be kept alive by /api/renew, seconds. */
  ziikSessionTtl: number;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  /** The deadline of every call to PostgreSQL (connect, statement, waiting for a connection), ms. */
  dbTimeoutMs: number;
  redisUrl?: string;
  /** Prefix of every Redis key, so deployments can share one Redis. */
  redisPrefix: string;
  /** Deadline of every Redis call (and of connecting at start); past it, limits count in the store. */
  redisTimeoutMs: number;
  smtpUrl?: string;
  mailFrom: string;
  publicUrl: string;
  issuer: string;
  /** The `aud` of every token Latchkey mints. */
  audience: string;
  signingAlg: SigningAlg;
  adminToken?: string;
  /** Bearer token for RFC 7662 introspection; the endpoint is off when unset. */
  introspectionToken?: string;
  /** When set, GET /metrics needs it as a bearer token. */
  metricsToken?: string;
  keySecret?: string;
  /** NODE_ENV=production: the deployment says it is production (start-up warns of settings unsafe there). */
  production: boolean;
  /** Keys the hashes of one-time codes (LATCHKEY_SECRET); else a generated file in the data dir. */
  secret?: string;
  logLevel: string;
  /** Unset: readable lines on a terminal, JSON lines otherwise. */
  logFormat?: 'json' | 'pretty';
  /** How long SIGTERM/SIGINT may take to finish requests in flight and queued mail, seconds. */
  shutdownTimeoutSeconds: number;
  /** Processes serving the port (node:cluster); 1 is a single process with no cluster at all. */
  workers: number;
  /**
   * Which X-Forwarded-For hops to believe for the client IP: none (false), all (true), the
   * nearest N (a number), or those from these proxy addresses (comma-separated addresses,
   * CIDRs, or proxy-addr's names loopback, linklocal, uniquelocal).
   */
  trustProxy: boolean | number | string;
  passwordMinLength: number;
  /** Failed password checks per (account, client IP) before that IP is locked out of the account for lockoutSeconds. */
  lockoutThreshold: number;
  lockoutSeconds: number;
  /** Requests per minute per client IP on every unauthenticated credential and recovery endpoint. */
  ipRateLimit: number;
  /** Failed password checks per account (from any IP) in accountWindowSeconds before each attempt waits a growing delay. */
  accountSlowdownAfter: number;
  accountWindowSeconds: number;
  /** The growing delay's ceiling, seconds. */
  accountMaxDelay: number;
  /** Reset mails per hour per (account, client IP); reset requests per hour per client IP; reset mails per hour per account. */
  resetMailsPerAccountIp: number;
  resetRequestsPerIp: number;
  resetMailsPerAccount: number;
  /** Wrong reset codes per (account, client IP) per hour; and per code, from everywhere, before it dies. */
  codeAttemptsPerIp: number;
  codeMaxAttempts: number;
  /** Audit events older than this many days are deleted. */
  auditRetentionDays: number;
  /** Verified tokens, and sessions with their users, kept in memory (each); 0 turns the cache off. */
  verifyCacheEntries: number;
  /** A cached session and user is read again after this many seconds even when no change was heard. */
  verifyCacheMaxAgeSeconds: number;
  lifetimes: DialectLifetimes;
  migrateFrom?: MigrateFrom;
  /** Largest body POST /admin/users/import reads, bytes. */
  importMaxBytes: number;
  /** The work one login may spend on a stored hash, in default argon2id checks (src/core/hash-formats.ts COST). */
  foreignHashMaxCost: number;
  /** Checks of costly (foreign or older) hashes that run at once; more wait their turn, briefly. */
  foreignHashConcurrency: number;
  /**
   * Started by an npm script (`npm start`; npm sets npm_lifecycle_event): npm cannot pass a
   * SIGKILL of itself on, so the server stops as on SIGTERM once npm is gone.
   */
  stopWithParent: boolean;
}

export type MigrationDialect = 'wikimedia' | 'roypi' | 'ziik';
export const MIGRATION_DIALECTS: readonly MigrationDialect[] = ['wikimedia', 'roypi', 'ziik'];

/** A live service users are migrated from at their first login (LATCHKEY_MIGRATE_FROM). */
export interface MigrateFrom {
  dialect: MigrationDialect;
  /** Base URL, without a trailing slash. */
  url: string;
  timeoutMs: number;
  /**
   * LATCHKEY_MIGRATE_CASE_INSENSITIVE: the operator declares that the old service matches names
   * case-insensitively, so users imported before their original identifier was kept may be asked
   * about by their stored (lowercased) name.
   */
  caseInsensitive: boolean;
}

export class ConfigError extends Error {}

/**
 * The data dir when LATCHKEY_DATA_DIR is unset: the install's ./data, not the caller's, so the
 * CLI run from any directory opens the store `npm start` serves.
 */
export const DEFAULT_DATA_DIR = path.join(INSTALL_ROOT, 'data');

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** An integer in [min, max]: past max is a setting that would undo the limit it sets. */
function atMost(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = int(env, name, fallback, min);
  if (value > max) throw new ConfigError(`${name} must be at most ${max}, got ${value}`);
  return value;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (!raw) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

const DAY = 86_400;

function trustProxy(raw: string | undefined): Config['trustProxy'] {
  if (!raw || raw === 'false' || raw === '0') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const entries = raw.split(',').map((e) => e.trim());
  const address = /^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)$/;
  if (entries.some((e) => !address.test(e))) {
    throw new ConfigError('LATCHKEY_TRUST_PROXY must be true, a hop count, or comma-separated proxy addresses or CIDRs');
  }
  return entries.join(',');
}

/** `<dialect>+<base URL>`, e.g. `roypi+https://old.example.com`. */
function migrateFrom(env: Env): MigrateFrom | undefined {
  const raw = env.LATCHKEY_MIGRATE_FROM;
  if (!raw) return undefined;
  const match = /^([a-z]+)\+(.+)$/.exec(raw);
  const dialect = match?.[1] as MigrationDialect | undefined;
  if (!match || !MIGRATION_DIALECTS.includes(dialect!)) {
    throw new ConfigError(`LATCHKEY_MIGRATE_FROM must be <${MIGRATION_DIALECTS.join('|')}>+<base URL>, e.g. roypi+https://old.example.com`);
  }
  const base = url({ LATCHKEY_MIGRATE_FROM: match[2] }, 'LATCHKEY_MIGRATE_FROM', ['https:', 'http:'])!;
  const caseInsensitive = env.LATCHKEY_MIGRATE_CASE_INSENSITIVE ?? 'false';
  if (caseInsensitive !== 'true' && caseInsensitive !== 'false') throw new ConfigError('LATCHKEY_MIGRATE_CASE_INSENSITIVE must be true or false');
  return {
    dialect: dialect!,
    url: base.replace(/\/+$/, ''),
    timeoutMs: int(env, 'LATCHKEY_MIGRATE_TIMEOUT_MS', 5000, 100),
    caseInsensitive: caseInsensitive === 'true',
  };
}

/** More processes than this is a typo, not a deployment: each holds its own pools and caches. */
export const MAX_WORKERS = 64;

function workers(env: Env): number {
  const n = int(env, 'LATCHKEY_WORKERS', 1, 1);
  if (n > MAX_WORKERS) throw new ConfigError(`LATCHKEY_WORKERS must be at most ${MAX_WORKERS}, got ${n}`);
  return n;
}

/** A URL the world sees (mail links, discovery, `iss`): credentials in it would be published. */
function publicBase(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  const parsed = URL.canParse(raw) ? new URL(raw) : undefined;
  if (parsed?.username || parsed?.password) throw new ConfigError(`${name} must not carry a user or password: it is published in mail links and discovery documents`);
  return raw.replace(/\/+$/, '');
}

/** A bearer token or secret: unset, or strong enough that guessing it is hopeless. */
function longSecret(env: Env, name: string): string | undefined {
  const value = env[name] || undefined;
  if (value !== undefined && !isStrongSecret(value)) throw new ConfigError(`${name} must be ${SECRET_RULE}`);
  return value;
}

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, 'PORT', 8080);
  const host = env.HOST || '127.0.0.1';
  const publicUrl = publicBase(env, 'LATCHKEY_PUBLIC_URL') ?? `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}`;
  const adminToken = longSecret(env, 'LATCHKEY_ADMIN_TOKEN');
  return {
    port,
    host,
    dataDir: env.LATCHKEY_DATA_DIR ? path.resolve(env.LATCHKEY_DATA_DIR) : DEFAULT_DATA_DIR,
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dbTimeoutMs: int(env, 'LATCHKEY_DB_TIMEOUT_MS', 5000, 100),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisPrefix: env.LATCHKEY_REDIS_PREFIX || 'latchkey',
    redisTimeoutMs: int(env, 'LATCHKEY_REDIS_TIMEOUT_MS', 1000, 10),
    smtpUrl: url(env, 'LATCHKEY_SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom: env.LATCHKEY_MAIL_FROM || 'Latchkey <no-reply@localhost>',
    publicUrl,
    issuer: publicBase(env, 'LATCHKEY_ISSUER') ?? publicUrl,
    audience: env.LATCHKEY_AUDIENCE || 'latchkey',
    signingAlg: oneOf(env, 'LATCHKEY_SIGNING_ALG', SIGNING_ALGS, 'EdDSA'),
    adminToken,
    metricsToken: longSecret(env, 'LATCHKEY_METRICS_TOKEN'),
    introspectionToken: longSecret(env, 'LATCHKEY_INTROSPECTION_TOKEN'),
    keySecret: longSecret(env, 'LATCHKEY_KEY_SECRET'),
    secret: longSecret(env, 'LATCHKEY_SECRET'),
    production: env.NODE_ENV === 'production',
    // Checked here: pino would otherwise stop the start with a stack trace.
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    logFormat: env.LATCHKEY_LOG_FORMAT ? oneOf(env, 'LATCHKEY_LOG_FORMAT', ['json', 'pretty'] as const, 'json') : undefined,
    shutdownTimeoutSeconds: int(env, 'LATCHKEY_SHUTDOWN_TIMEOUT', 10, 1),
    workers: workers(env),
    trustProxy: trustProxy(env.LATCHKEY_TRUST_PROXY),
    passwordMinLength: int(env, 'LATCHKEY_PASSWORD_MIN_LENGTH', 8, 1),
    importMaxBytes: int(env, 'LATCHKEY_IMPORT_MAX_BYTES', 256 * 1024 * 1024, 1),
    foreignHashMaxCost: atMost(env, 'LATCHKEY_FOREIGN_HASH_MAX_COST', DEFAULT_FOREIGN_HASH_MAX_COST, 1, FOREIGN_HASH_MAX_COST_CEILING),
    foreignHashConcurrency: atMost(env, 'LATCHKEY_FOREIGN_HASH_CONCURRENCY', 1, 1, 16),
    lockoutThreshold: int(env, 'LATCHKEY_LOCKOUT_THRESHOLD', 5, 1),
    lockoutSeconds: int(env, 'LATCHKEY_LOCKOUT_SECONDS', 900, 1),
    ipRateLimit: int(env, 'LATCHKEY_IP_RATE_LIMIT', 60, 1),
    accountSlowdownAfter: int(env, 'LATCHKEY_ACCOUNT_SLOWDOWN_AFTER', 20, 1),
    accountWindowSeconds: int(env, 'LATCHKEY_ACCOUNT_WINDOW_SECONDS', 3600, 1),
    accountMaxDelay: int(env, 'LATCHKEY_ACCOUNT_MAX_DELAY', 60, 1),
    resetMailsPerAccountIp: int(env, 'LATCHKEY_RESET_MAILS_PER_ACCOUNT_IP', 2, 1),
    resetRequestsPerIp: int(env, 'LATCHKEY_RESET_REQUESTS_PER_IP', 20, 1),
    resetMailsPerAccount: int(env, 'LATCHKEY_RESET_MAILS_PER_ACCOUNT', 5, 1),
    codeAttemptsPerIp: int(env, 'LATCHKEY_CODE_ATTEMPTS_PER_IP', 5, 1),
    codeMaxAttempts: int(env, 'LATCHKEY_CODE_MAX_ATTEMPTS', 10, 1),
    auditRetentionDays: int(env, 'LATCHKEY_AUDIT_RETENTION_DAYS', 365, 1),
    verifyCacheEntries: int(env, 'LATCHKEY_VERIFY_CACHE_ENTRIES', 10_000, 0),
    verifyCacheMaxAgeSeconds: int(env, 'LATCHKEY_VERIFY_CACHE_MAX_AGE', 60, 1),
    lifetimes: {
      wikimediaAccessTtl: int(env, 'LATCHKEY_WIKIMEDIA_ACCESS_TTL', DAY, 1),
      wikimediaRefreshTtl: int(env, 'LATCHKEY_WIKIMEDIA_REFRESH_TTL', 90 * DAY, 1),
      wikimediaRefreshLimit: int(env, 'LATCHKEY_WIKIMEDIA_REFRESH_LIMIT', 90, 1),
      roypiTokenTtl: int(env, 'LATCHKEY_ROYPI_TOKEN_TTL', 5 * DAY, 1),
      roypiRefreshWindow: int(env, 'LATCHKEY_ROYPI_REFRESH_WINDOW', 10 * DAY, 1),
      ziikTokenTtl: int(env, 'LATCHKEY_ZIIK_TOKEN_TTL', DAY, 1),
      ziikSessionTtl: int(env, 'LATCHKEY_ZIIK_SESSION_TTL', 30 * DAY, 1),
    },
    migrateFrom: migrateFrom(env),
    stopWithParent: Boolean(env.npm_lifecycle_event),
  };
}
