// The one place that reads the environment. Everything else receives a Config.
//
// Every setting is one row of SETTINGS: its variable (and flag), default, parser (which holds
// its bounds) and description. The reader checks each from its row, the Config type is derived
// from the rows, and the README's configuration table is generated from them
// (`npm run docs:config`; test/docs.test.ts fails when the README differs).
import path from 'node:path';
import { SIGNING_ALGS } from '../domain/signing-algs.ts';
import { DEFAULT_FOREIGN_HASH_MAX_COST, DEFAULT_FOREIGN_HASH_PER_CLIENT, DEFAULT_FOREIGN_HASH_PER_NETWORK, FOREIGN_HASH_MAX_COST_CEILING } from '../domain/foreign-hash-cost.ts';
import { INSTALL_ROOT } from './install.ts';
import { API_NAMES, type ApiName } from '../domain/apis.ts';
import { ConfigError, publicBaseUrl, boolean, directory, either, integer, longSecret, oneOf, text, url, type Parser } from './config-parsers.ts';

export { ConfigError };

export interface Setting<T> {
  /** The environment variable. */
  env: string;
  /** The command-line flag that wins over the variable, if any (of `latchkey serve`). */
  flag?: string;
  parser: Parser<T>;
  default: T;
  /** The default as the README says it, where the value alone would not (one derived from other settings). */
  defaultText?: string;
  /** Read only when this other variable is set; otherwise the default, whatever the value. */
  onlyWith?: string;
  /** The README's words, in Markdown. */
  description: string;
}

/** The parser alone gives the value's type; the default must be one of its values. */
const setting = <T>(row: Omit<Setting<T>, 'default'> & { default: NoInfer<T> }): Setting<T> => row;
/** A setting that is off, or derived from others, when its variable is unset. */
const optional = <T>(row: Omit<Setting<T>, 'default'>): Setting<T | undefined> => ({ ...row, default: undefined });


/**
 * The data dir when LATCHKEY_DATA_DIR is unset: the install's ./data, not the caller's, so the
 * CLI run from any directory opens the store `npm start` serves.
 */
export const DEFAULT_DATA_DIR = path.join(INSTALL_ROOT, 'data');

/** More processes than this is a typo, not a deployment: each holds its own pools and caches. */
export const MAX_WORKERS = 64;

const DAY = 86_400;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Which X-Forwarded-For hops to believe: none (false), all (true), the nearest N, or those from these proxies. */
const trustProxy: Parser<boolean | number | string> = {
  parse(raw, name) {
    if (raw === 'false' || raw === '0') return false;
    if (raw === 'true') return true;
    if (/^\d+$/.test(raw)) return Number(raw);
    const entries = raw.split(',').map((e) => e.trim());
    const address = /^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)$/;
    if (entries.some((e) => !address.test(e))) throw new ConfigError(`${name} must be true, a hop count, or comma-separated proxy addresses or CIDRs`);
    return entries.join(',');
  },
  accepts: "`0` or `false`, a hop count, `true`, or comma-separated addresses, CIDRs and proxy-addr's names (`loopback`, `linklocal`, `uniquelocal`)",
  refuses: 'not an address',
};

/** `<dialect>+<base URL>`, e.g. `roypi+https://old.example.com`; the URL without a trailing slash. */
const migrationSource: Parser<{ dialect: ApiName; url: string }> = {
  parse(raw, name) {
    const match = /^([a-z]+)\+(.+)$/.exec(raw);
    const dialect = match?.[1] as ApiName | undefined;
    if (!match || !API_NAMES.includes(dialect!)) {
      throw new ConfigError(`${name} must be <${API_NAMES.join('|')}>+<base URL>, e.g. roypi+https://old.example.com`);
    }
    return { dialect: dialect!, url: url(['https:', 'http:']).parse(match[2], name).replace(/\/+$/, '') };
  },
  accepts: `\`<${API_NAMES.join('|')}>+<base URL>\` (${either(['https:', 'http:'])})`,
  refuses: 'old.example.com',
};

/** One row per setting, in the README's order. */
export const SETTINGS = {
  port: setting({ env: 'PORT', parser: integer({ min: 0 }), default: 8080, description: 'HTTP port' }),
  host: setting({ env: 'HOST', parser: text, default: '127.0.0.1', description: 'address to listen on; use `0.0.0.0` in a container' }),
  dataDir: setting({
    env: 'LATCHKEY_DATA_DIR',
    parser: directory,
    default: DEFAULT_DATA_DIR,
    defaultText: '`data/` in the install (beside `package.json`), wherever the command runs from',
    description: 'embedded store (`latchkey.sqlite`) and the dev mail outbox (`outbox/`); a relative value is relative to the working directory',
  }),
  databaseUrl: optional({ env: 'DATABASE_URL', parser: url(['postgres:', 'postgresql:']), description: 'use PostgreSQL instead of the embedded store' }),
  dbTimeoutMs: setting({
    env: 'LATCHKEY_DB_TIMEOUT_MS',
    parser: integer({ min: 100 }),
    default: 5000,
    description:
      "deadline of every call to PostgreSQL, ms: connecting, waiting for a pooled connection, each statement (also PostgreSQL's own `statement_timeout`; migrations are exempt); past it a request gets a 503 with `Retry-After`",
  }),
  redisUrl: optional({
    env: 'REDIS_URL',
    parser: url(['redis:', 'rediss:']),
    description: 'keep rate limits and lockouts in Redis (without it they are kept beside the store, shared by instances on one database and by the CLI)',
  }),
  redisPrefix: setting({ env: 'LATCHKEY_REDIS_PREFIX', parser: text, default: 'latchkey', description: 'prefix of every Redis key, so deployments can share one Redis' }),
  redisTimeoutMs: setting({
    env: 'LATCHKEY_REDIS_TIMEOUT_MS',
    parser: integer({ min: 10 }),
    default: 1000,
    description:
      'deadline of every Redis call and of connecting to it at start, ms; past it the limits count in the store (logged once, and once when Redis answers again; `/ready` says `degraded`)',
  }),
  smtpUrl: optional({
    env: 'LATCHKEY_SMTP_URL',
    parser: url(['smtp:', 'smtps:']),
    description: '`smtp://user:pass@host:587` or `smtps://…:465`; unset, mail is written as `.eml` files to `$LATCHKEY_DATA_DIR/outbox` and the log says where',
  }),
  mailFrom: setting({ env: 'LATCHKEY_MAIL_FROM', parser: text, default: 'Latchkey <no-reply@localhost>', description: 'sender of reset mail' }),
  publicUrl: optional({
    env: 'LATCHKEY_PUBLIC_URL',
    parser: publicBaseUrl,
    defaultText: '`http://HOST:PORT`',
    description: 'the URL clients reach Latchkey at; used in reset links and discovery',
  }),
  issuer: optional({
    env: 'LATCHKEY_ISSUER',
    parser: publicBaseUrl,
    defaultText: '`LATCHKEY_PUBLIC_URL`',
    description: '`iss` of every token; every instance of one deployment must share it',
  }),
  audience: setting({ env: 'LATCHKEY_AUDIENCE', parser: text, default: 'latchkey', description: '`aud` of every token Latchkey mints' }),
  signingAlg: setting({
    env: 'LATCHKEY_SIGNING_ALG',
    parser: oneOf(SIGNING_ALGS),
    default: 'EdDSA',
    description: 'algorithm of new signing keys (`EdDSA` is Ed25519)',
  }),
  keySecret: optional({
    env: 'LATCHKEY_KEY_SECRET',
    parser: longSecret,
    description: "when set, private signing keys are encrypted at rest (AES-256-GCM) with a key derived from it; keep it out of the database's backups",
  }),
  secret: optional({
    env: 'LATCHKEY_SECRET',
    parser: longSecret,
    defaultText: 'a generated `$LATCHKEY_DATA_DIR/secret`',
    description:
      "keys the HMACs that reset codes, reset links and challenge sessions are stored as, so a copy of the database cannot reverse a 6-digit code. Unset, the first start writes a random one to the data directory (owner-only). Every instance of a deployment must share it: an instance whose secret differs from the one the database was set up with refuses to start, naming this variable. Keep it out of the database's backups; changing it voids outstanding codes and links (they live at most an hour)",
  }),
  production: setting({
    env: 'NODE_ENV',
    parser: { parse: (raw) => raw === 'production', accepts: '`production`, or anything else' },
    default: false,
    description:
      '`production` says the deployment is production: the start then warns once when the secret is the generated file in the data directory and the signing keys are unsealed (`LATCHKEY_SECRET` and `LATCHKEY_KEY_SECRET` unset)',
  }),
  adminToken: optional({ env: 'LATCHKEY_ADMIN_TOKEN', parser: longSecret, description: 'bearer token for `/admin/*`; the admin API is off when unset' }),
  introspectionToken: optional({
    env: 'LATCHKEY_INTROSPECTION_TOKEN',
    parser: longSecret,
    description: 'bearer token resource servers present to `POST /introspect` (RFC 7662); the endpoint is off when unset',
  }),
  metricsToken: optional({
    env: 'LATCHKEY_METRICS_TOKEN',
    parser: longSecret,
    description: 'when set, `GET /metrics` needs it as a bearer token; when unset, `/metrics` is open (keep it off the public internet)',
  }),
  passwordMinLength: setting({
    env: 'LATCHKEY_PASSWORD_MIN_LENGTH',
    parser: integer({ min: 1 }),
    default: 8,
    description: 'shortest password accepted (a password is at most 256 characters; no composition rules, per NIST SP 800-63B)',
  }),
  lockoutThreshold: setting({
    env: 'LATCHKEY_LOCKOUT_THRESHOLD',
    parser: integer({ min: 1 }),
    default: 5,
    description: 'failed password checks for one account from one client IP before that IP is locked out of the account',
  }),
  lockoutSeconds: setting({
    env: 'LATCHKEY_LOCKOUT_SECONDS',
    parser: integer({ min: 1 }),
    default: 900,
    description: 'how long those failures are counted, and how long such a lockout lasts',
  }),
  ipRateLimit: setting({
    env: 'LATCHKEY_IP_RATE_LIMIT',
    parser: integer({ min: 1 }),
    default: 60,
    description:
      'requests per minute per client IP on every unauthenticated credential and recovery path. Every per-IP limit (this one, the lockouts, reset mails and codes, wrong operator tokens) counts an IPv6 client by its /64, and an IPv4-mapped address (`::ffff:192.0.2.1`) as its IPv4 address',
  }),
  accountSlowdownAfter: setting({
    env: 'LATCHKEY_ACCOUNT_SLOWDOWN_AFTER',
    parser: integer({ min: 1 }),
    default: 20,
    description: 'failed password checks for one account, from any IP, before each further attempt waits a growing delay',
  }),
  accountWindowSeconds: setting({ env: 'LATCHKEY_ACCOUNT_WINDOW_SECONDS', parser: integer({ min: 1 }), default: 3600, description: "how long an account's failures are counted" }),
  accountMaxDelay: setting({ env: 'LATCHKEY_ACCOUNT_MAX_DELAY', parser: integer({ min: 1 }), default: 60, description: "the growing delay's ceiling, seconds" }),
  resetMailsPerAccountIp: setting({
    env: 'LATCHKEY_RESET_MAILS_PER_ACCOUNT_IP',
    parser: integer({ min: 1 }),
    default: 2,
    description: 'reset mails per hour to one account caused from one client IP',
  }),
  resetMailsPerAccount: setting({ env: 'LATCHKEY_RESET_MAILS_PER_ACCOUNT', parser: integer({ min: 1 }), default: 5, description: 'reset mails per hour to one account, from anywhere' }),
  resetRequestsPerIp: setting({
    env: 'LATCHKEY_RESET_REQUESTS_PER_IP',
    parser: integer({ min: 1 }),
    default: 20,
    description: 'reset requests per hour per client IP, whatever the account',
  }),
  codeAttemptsPerIp: setting({
    env: 'LATCHKEY_CODE_ATTEMPTS_PER_IP',
    parser: integer({ min: 1 }),
    default: 5,
    description: 'wrong reset codes per hour for one account from one client IP',
  }),
  codeMaxAttempts: setting({
    env: 'LATCHKEY_CODE_MAX_ATTEMPTS',
    parser: integer({ min: 1 }),
    default: 10,
    description: 'wrong guesses one reset code takes, from everywhere, before it dies',
  }),
  auditRetentionDays: setting({
    env: 'LATCHKEY_AUDIT_RETENTION_DAYS',
    parser: integer({ min: 1 }),
    default: 365,
    description: 'audit events older than this many days are deleted (hourly sweep, with used codes and dead sessions)',
  }),
  trustProxy: setting({
    env: 'LATCHKEY_TRUST_PROXY',
    parser: trustProxy,
    default: false,
    defaultText: '`0`',
    description:
      'which `X-Forwarded-For` hops give the client IP: `0` none; `N` the nearest N hops are your proxies; a comma-separated list of proxy addresses or CIDRs (`loopback`, `10.0.0.0/8`; safest); `true` any (only if nothing reaches Latchkey but through a proxy that overwrites the header)',
  }),
  wikimediaAccessTtl: setting({ env: 'LATCHKEY_WIKIMEDIA_ACCESS_TTL', parser: integer({ min: 1 }), default: DAY, description: '`/v1` access and ID token lifetime, seconds' }),
  wikimediaRefreshTtl: setting({
    env: 'LATCHKEY_WIKIMEDIA_REFRESH_TTL',
    parser: integer({ min: 1 }),
    default: 90 * DAY,
    description: '`/v1` refresh token lifetime, seconds (90 days)',
  }),
  wikimediaRefreshLimit: setting({
    env: 'LATCHKEY_WIKIMEDIA_REFRESH_LIMIT',
    parser: integer({ min: 1 }),
    default: 90,
    description: 'access tokens one `/v1` refresh token may mint',
  }),
  roypiTokenTtl: setting({ env: 'LATCHKEY_ROYPI_TOKEN_TTL', parser: integer({ min: 1 }), default: 5 * DAY, description: '`/auth` token lifetime, seconds (5 days)' }),
  roypiRefreshWindow: setting({
    env: 'LATCHKEY_ROYPI_REFRESH_WINDOW',
    parser: integer({ min: 1 }),
    default: 10 * DAY,
    description: '`/auth` tokens refresh until this many seconds after the original login (10 days)',
  }),
  ziikTokenTtl: setting({ env: 'LATCHKEY_ZIIK_TOKEN_TTL', parser: integer({ min: 1 }), default: DAY, description: '`/api` token lifetime, seconds' }),
  ziikSessionTtl: setting({
    env: 'LATCHKEY_ZIIK_SESSION_TTL',
    parser: integer({ min: 1 }),
    default: 30 * DAY,
    description: '`/api/renew` keeps a login alive at most this many seconds (30 days)',
  }),
  verifyCacheEntries: setting({
    env: 'LATCHKEY_VERIFY_CACHE_ENTRIES',
    parser: integer({ min: 0 }),
    default: 10_000,
    description: 'verified tokens (by hash) and sessions with their users that online verification keeps in memory, each; `0` turns the cache off',
  }),
  verifyCacheMaxAgeSeconds: setting({
    env: 'LATCHKEY_VERIFY_CACHE_MAX_AGE',
    parser: integer({ min: 1 }),
    default: 60,
    description: 'seconds after which a cached session and user is read again even if no change was heard (a safety net; changes are heard at once)',
  }),
  migrateFrom: optional({
    env: 'LATCHKEY_MIGRATE_FROM',
    parser: migrationSource,
    description: 'a live service to migrate users from at their first login, e.g. `roypi+https://old.example.com`; credentials in the URL (`roypi+https://svc:pass@old.example.com`) are sent as `Authorization: Basic`, never in the URL, and never logged; see "Migrating users"',
  }),
  migrateCaseInsensitive: setting({
    env: 'LATCHKEY_MIGRATE_CASE_INSENSITIVE',
    parser: boolean,
    default: false,
    onlyWith: 'LATCHKEY_MIGRATE_FROM',
    description:
      '`true` declares that the old service matches names case-insensitively, and "case" is ASCII `A`-`Z` only (never width, compatibility or `ß`/`ss` forms, nor a non-ASCII letter such as U+212A KELVIN SIGN, which JavaScript lowercases to `k`): users imported before Latchkey kept each user\'s identifier as the old service knows it (they have only the lowercased name) may then be asked about by the name as stored then, and a user not imported may be created at first login from a name that differs from its identity key only by ASCII case (`Alice`). Otherwise such users are not migrated until re-imported with `--update`, and only a name that is its own key (`alice`) is created; see "Migrating users"',
  }),
  migrateTimeoutMs: setting({
    env: 'LATCHKEY_MIGRATE_TIMEOUT_MS',
    parser: integer({ min: 100 }),
    default: 5000,
    onlyWith: 'LATCHKEY_MIGRATE_FROM',
    description: 'how long a login waits for the service of `LATCHKEY_MIGRATE_FROM`, ms, before it counts as a failed login',
  }),
  importMaxBytes: setting({
    env: 'LATCHKEY_IMPORT_MAX_BYTES',
    parser: integer({ min: 1 }),
    default: 256 * 1024 * 1024,
    description:
      'largest body `POST /admin/users/import` reads (256 MiB); a larger one is answered 413, naming the line it stopped at (rows above it are written; importing again is idempotent). Each line (row) may be at most 64 KiB there and in `latchkey users import`: a longer JSON Lines row is rejected with its line, a longer CSV record stops the import naming its line',
  }),
  foreignHashMaxCost: setting({
    env: 'LATCHKEY_FOREIGN_HASH_MAX_COST',
    parser: integer({ min: 1, max: FOREIGN_HASH_MAX_COST_CEILING }),
    default: DEFAULT_FOREIGN_HASH_MAX_COST,
    description:
      'the most work one login may spend on a stored hash, in default argon2id checks (formula in `src/core/hash-formats.ts`: bcrypt 12 is about 18, PBKDF2-SHA256 at 1M iterations 14). Import rejects a row over it with its line; a stored hash over it fails the login as a wrong password, and the audit trail says `hash_over_cost`',
  }),
  foreignHashConcurrency: setting({
    env: 'LATCHKEY_FOREIGN_HASH_CONCURRENCY',
    parser: integer({ min: 1, max: 16 }),
    default: 1,
    description:
      'checks of costly (foreign or older) hashes that run at once; others wait their turn, each at most 5 s, beyond that a login is answered rate-limited. Native hashes never wait here',
  }),
  foreignHashPerClient: setting({
    env: 'LATCHKEY_FOREIGN_HASH_PER_CLIENT',
    parser: integer({ min: 1, max: 16 }),
    default: DEFAULT_FOREIGN_HASH_PER_CLIENT,
    description:
      "checks of costly hashes one client address (IPv6: its /64) may have running or waiting at once. While it has that many, each further login from it is answered rate-limited, whatever the name (so the answer tells nothing of who was imported), and counts no failed attempt; other clients' logins are never refused for it",
  }),
  foreignHashPerNetwork: setting({
    env: 'LATCHKEY_FOREIGN_HASH_PER_NETWORK',
    parser: integer({ min: 1, max: 64 }),
    default: DEFAULT_FOREIGN_HASH_PER_NETWORK,
    description:
      "checks of costly hashes the clients of one IPv6 /56 may have running or waiting at once, all together; an IPv6 /48 and an IPv4 /24 may have twice as many. Past it, each further login from that network is answered rate-limited, as past `LATCHKEY_FOREIGN_HASH_PER_CLIENT`, so many addresses of one network cannot fill the gate for everyone else. Every login, whatever its name, is also answered rate-limited while the checks queued could not all start within the 5 s wait",
  }),
  // Checked here: pino would otherwise stop the start with a stack trace.
  logLevel: setting({ env: 'LOG_LEVEL', parser: oneOf(LOG_LEVELS), default: 'info', description: 'how much the log says' }),
  logFormat: optional({
    env: 'LATCHKEY_LOG_FORMAT',
    parser: oneOf(['json', 'pretty'] as const),
    description: '`json` (one pino JSON object a line) or `pretty` (readable lines); unset, pretty on a terminal and JSON otherwise. Both carry ISO-8601 UTC times',
  }),
  shutdownTimeoutSeconds: setting({
    env: 'LATCHKEY_SHUTDOWN_TIMEOUT',
    parser: integer({ min: 1 }),
    default: 10,
    description: 'seconds `SIGTERM`/`SIGINT` may take to finish requests in flight and queued mail before the process exits anyway (with status 1)',
  }),
  workers: setting({
    env: 'LATCHKEY_WORKERS',
    flag: '--workers <n>',
    parser: integer({ min: 1, max: MAX_WORKERS }),
    default: 1,
    description:
      'processes serving the port (node:cluster); `latchkey serve --workers N` wins over it. `1` is one process, no cluster. Above 1, the process you start is a primary that migrates the store, makes the first signing key and checks the secret and the data dir, then forks N workers sharing the port; it says "ready" once all of them listen, restarts a worker that dies (after 1 s, doubling up to 30 s while it keeps dying young; each restart is logged), and on `SIGTERM`/`SIGINT` has every worker finish its requests and mail before it exits. Workers share the store, its change feed (a revocation on one is refused by the others within a second) and the limits (in the store or Redis: N workers are no N budgets). Each has its own database pool (10 connections on PostgreSQL), cache and, with `npm start`, hashing threads (one per core): size N to the cores. On SQLite the workers share one write lock, so writes (logins, refreshes) do not get faster with more of them and can get slower (BENCHMARKS.md, "One worker and two"): more than one worker pays off there only when verification dominates; on PostgreSQL verification scales with them. A scrape of `/metrics` reaches one worker and answers for all of them, added up',
  }),
};

/**
 * Read before any of our code runs, by bin/threadpool.cjs (preloaded with `node -r`), so not
 * parsed here: listed for the README's table, and test/docs.test.ts checks that these are the
 * variables that file reads.
 */
export const PRELOAD_SETTINGS: readonly (Pick<Setting<unknown>, 'env' | 'defaultText' | 'description'> & { accepts: string })[] = [
  {
    env: 'UV_THREADPOOL_SIZE',
    defaultText: 'the number of cores (at least 2)',
    accepts: "integer 1 to 1024 (libuv's bounds)",
    description:
      "threads hashing passwords (libuv's pool), set by `bin/threadpool.cjs`, which `npm start`, the Dockerfile and the systemd unit preload with `node -r`; a value you set wins",
  },
  {
    env: 'LATCHKEY_POOL_NICENESS',
    defaultText: '`10`',
    accepts: 'integer 0 to 19',
    description:
      "how much lower than the event loop's the hashing threads' priority is (Linux nice; `0` leaves them alone), so a token verification never waits behind a login's hash for a core while hashing still gets every idle cycle. Read by `bin/threadpool.cjs` at start",
  },
];

type Settings = typeof SETTINGS;
/** Each setting's value, as its parser (or its default) gives it. */
type Values = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never };

/** The settings gathered under `lifetimes` (src/core/profiles.ts hands them to each API). */
const LIFETIMES = ['wikimediaAccessTtl', 'wikimediaRefreshTtl', 'wikimediaRefreshLimit', 'roypiTokenTtl', 'roypiRefreshWindow', 'ziikTokenTtl', 'ziikSessionTtl'] as const;
export type DialectLifetimes = Pick<Values, (typeof LIFETIMES)[number]>;
/** Settings the Config holds otherwise than as read: grouped (lifetimes, migrateFrom), or URLs whose defaults derive from others. */
const ASSEMBLED = [...LIFETIMES, 'migrateFrom', 'migrateTimeoutMs', 'migrateCaseInsensitive', 'publicUrl', 'issuer'] as const satisfies readonly (keyof Values)[];
type Assembled = (typeof ASSEMBLED)[number];

/** A live service users are migrated from at their first login (LATCHKEY_MIGRATE_FROM). */
export interface MigrateFrom {
  dialect: ApiName;
  /** Base URL, without a trailing slash. */
  url: string;
  timeoutMs: number;
  /** LATCHKEY_MIGRATE_CASE_INSENSITIVE: the old service may be asked about a stored (lowercased) name. */
  caseInsensitive: boolean;
}

export type Config = Omit<Values, Assembled> & {
  publicUrl: string;
  issuer: string;
  lifetimes: DialectLifetimes;
  migrateFrom?: MigrateFrom;
  /**
   * Started by an npm script (`npm start`; npm sets npm_lifecycle_event): npm cannot pass a
   * SIGKILL of itself on, so the server stops as on SIGTERM once npm is gone.
   */
  stopWithParent: boolean;
};

type Env = Record<string, string | undefined>;

/** Each setting from its row; an empty variable counts as unset. A bad value throws a ConfigError naming it. */
function readSettings(env: Env): Values {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  const values: Record<string, unknown> = {};
  for (const [key, row] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const read = set(row.env) && (row.onlyWith === undefined || set(row.onlyWith));
    values[key] = read ? row.parser.parse(env[row.env]!, row.env) : row.default;
  }
  return values as Values;
}

export function loadConfig(env: Env = process.env): Config {
  const values = readSettings(env);
  const asRead = Object.fromEntries(Object.entries(values).filter(([key]) => !(ASSEMBLED as readonly string[]).includes(key))) as Omit<Values, Assembled>;
  const publicUrl = values.publicUrl ?? `http://${values.host === '0.0.0.0' ? 'localhost' : values.host}:${values.port}`;
  const { migrateFrom } = values;
  return {
    ...asRead,
    publicUrl,
    issuer: values.issuer ?? publicUrl,
    lifetimes: Object.fromEntries(LIFETIMES.map((key) => [key, values[key]])) as DialectLifetimes,
    migrateFrom: migrateFrom && { ...migrateFrom, timeoutMs: values.migrateTimeoutMs, caseInsensitive: values.migrateCaseInsensitive },
    stopWithParent: Boolean(env.npm_lifecycle_event),
  };
}
