// Wires the store, mailer, limits, core and HTTP dialects into one server.
import fs from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import { ConfigError, type Config } from '../platform/config.ts';
import { instanceSecret, makeOwnerOnly } from '../platform/data-dir.ts';
import { keyedHash } from '../core/secrets.ts';
import { Store } from '../store/store.ts';
import { sqliteFile } from '../store/db.ts';
import { createMailer, type Mailer } from '../mail/mailer.ts';
import { outboxDir } from '../mail/outbox.ts';
import { limitsOn, type Limits } from '../limits/limits.ts';
import { openRedisLimits } from '../limits/redis.ts';
import { storeTallies } from '../limits/sql.ts';
import { createCore, type Core } from '../core/index.ts';
import { OldService } from '../upstream/old-service.ts';
import { registerBodyParsers } from '../http/bodies.ts';
import { registerInputChecks } from '../http/control-characters.ts';
import { frameworkErrorsIn, inDialect, useDialectErrorHandler, type DialectScope } from '../http/dialect-errors.ts';
import { HTTP_APIS } from '../http/apis.ts';
import { registerOpenApi } from '../http/openapi.ts';
import { Background } from '../platform/background.ts';
import { Metrics } from '../metrics/registry.ts';
import { registerMetrics } from '../http/metrics.ts';
import { workerMetrics } from '../metrics/cluster.ts';
import { resourceErrors, resourceRoutes } from '../http/resource.ts';
import { adminErrors, adminRoutes, adminDisabledRoutes } from '../http/admin.ts';
import { indexRoutes } from '../http/index-page.ts';
import { resetPageRoutes } from '../http/reset-page.ts';
import { FIRST_MIGRATION } from '../store/migrations.ts';
import { loggerOptions } from '../platform/log.ts';
import { networkReason, noStore, storeFailure } from './startup-errors.ts';
import { redactUrl } from '../platform/redact.ts';
import { productionWarning } from './production-warning.ts';

export interface Services {
  store: Store;
  /** Migrations this start applied. */
  migrated: string[];
  background: Background;
  mailer: Mailer;
  limits: Limits;
  core: Core;
  close(): Promise<void>;
}

type Logger = FastifyInstance['log'];

/** Opens the store (migrating it), the mailer and the limits, and builds the core on them. */
export interface OpenOptions {
  clock?: () => number;
  metrics?: Metrics;
  /**
   * A cluster worker's start (src/run/cluster.ts): the primary already migrated the store, made the
   * first signing key, checked the secret and the data dir's modes, and said so in the log; the
   * worker neither repeats the one-time work (N workers would race on it) nor the lines.
   */
  worker?: boolean;
  /**
   * False: open only a store that exists (the file, and a schema in it), and refuse with
   * noStore instead of making a new, empty one. The CLI's commands that read or change data.
   */
  create?: boolean;
}

export async function openServices(config: Config, log: Logger, options: OpenOptions = {}): Promise<Services> {
  let store: Store | undefined;
  let limits: Limits | undefined;
  const announce = !options.worker;
  try {
    let migrated: string[] = [];
    const mustExist = options.create === false;
    // Checked before opening: opening the embedded store creates its file.
    if (mustExist && !config.databaseUrl && !fs.existsSync(sqliteFile(config.dataDir))) throw noStore(config);
    let found = true;
    try {
      store = Store.open({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, timeoutMs: config.dbTimeoutMs });
      if (mustExist) found = await store.hasSchema();
      if (found && !options.worker) migrated = await store.migrate();
    } catch (error) {
      throw storeFailure(error, config) ?? error;
    }
    if (!found) throw noStore(config);
    // A worker's store was migrated, and said so, by the primary.
    if (announce) logStore(log, store.describe, migrated);
    const secretKey = instanceSecret(config.dataDir, config.secret);
    // Every instance of a deployment must key code hashes alike, or codes mailed by one fail on another.
    const check = keyedHash(secretKey, 'latchkey: instance secret check');
    if ((await store.settleSetting('secret_check', check)) !== check) {
      throw new ConfigError(
        'LATCHKEY_SECRET (or the data directory\'s generated secret) is not the secret this database was set up with: give every instance of a deployment the same LATCHKEY_SECRET',
      );
    }
    const clock = options.clock ?? Date.now;
    // Tallies live beside the store, so the CLI and every instance see the same lockouts.
    const tallies = storeTallies(store);
    // Not in workers: files come and go in the data dir while peers serve (mail being renamed
    // into the outbox, SQLite's journals), and a chmod of one just gone would fail the start.
    if (!options.worker) makeOwnerOnly(config.dataDir);
    if (config.redisUrl) {
      limits = await openRedisLimits({
        url: config.redisUrl,
        prefix: config.redisPrefix,
        timeoutMs: config.redisTimeoutMs,
        tallies,
        clock,
        log,
        announce,
        where: redactUrl(config.redisUrl),
        networkReason,
      });
    } else {
      limits = limitsOn(tallies, 'store', clock, { close: () => tallies.close() });
      if (announce) log.info({ limits: 'store' }, 'limits: counted in the store (REDIS_URL is not set)');
    }
    const background = new Background((err, what) => log.error({ err }, `${what} failed`));
    const mailer = createMailer({
      smtpUrl: config.smtpUrl,
      from: config.mailFrom,
      outboxDir: outboxDir(config.dataDir),
      log,
      background,
    });
    const upstream = config.migrateFrom && new OldService(config.migrateFrom);
    if (upstream && announce) log.info({ from: upstream.describe }, 'users without a password here are migrated from the old service at their first login');
    const core = await createCore({ config, store, mailer, limits, background, clock: options.clock, onEvent: options.metrics?.onEvent, upstream, secretKey });
    if (core.createdKey) log.info({ kid: core.createdKey, alg: config.signingAlg }, `created a signing key: kid ${core.createdKey} (${config.signingAlg})`);
    const [openStore, openLimits] = [store, limits];
    return {
      store: openStore,
      migrated,
      background,
      mailer,
      limits: openLimits,
      core,
      async close() {
        await background.drain();
        await openLimits.close();
        await openStore.close();
      },
    };
  } catch (error) {
    await limits?.close();
    await store?.close();
    throw error;
  }
}

/** Which store this start uses, and what it did to its schema. */
function logStore(log: Logger, store: string, migrated: string[]): void {
  if (migrated.includes(FIRST_MIGRATION)) log.info({ store, applied: migrated }, `store: ${store}: created the schema`);
  else if (migrated.length) log.info({ store, applied: migrated }, `store: ${store}: applied ${migrated.join(', ')}`);
  else log.info({ store }, `store: ${store}`);
}

/** proxy-addr's trust function for "the nearest n hops are proxies". */
const hops = (n: number) => (_address: string, hop: number) => hop < n;

export interface BuildOptions {
  clock?: () => number;
  logger?: boolean;
  /** This process is cluster worker `index` (0-based; a replacement keeps its predecessor's). */
  worker?: { index: number };
}

export async function buildApp(config: Config, options: BuildOptions = {}) {
  // Where each error mapping answers: the resource routes' at the root, each API's and the admin
  // API's under their prefixes. A URL fastify refuses before routing is answered by its prefix's.
  const dialects: DialectScope[] = [
    { prefix: '', errors: resourceErrors },
    ...HTTP_APIS,
    ...(config.adminToken ? [{ prefix: '/admin', errors: adminErrors }] : []),
  ];
  const app = Fastify({
    logger: options.logger === false ? false : loggerOptions({ level: config.logLevel, format: config.logFormat }),
    bodyLimit: 64 * 1024,
    // Roypi documents trailing slashes, the others none; accept either everywhere.
    // maxParamLength: a 256-character name percent-encoded (up to 9 characters each) still fits.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 4096 },
    frameworkErrors: frameworkErrorsIn(dialects),
    // fastify fails closed on a bare hop count (it cannot check the peer is a proxy); the
    // operator who sets one says they run behind that many proxies, so trust that many hops.
    trustProxy: typeof config.trustProxy === 'number' ? hops(config.trustProxy) : config.trustProxy,
    // No type coercion: a number where a password should be is a client bug to report, not to guess at.
    ajv: { customOptions: { allErrors: true, coerceTypes: false } },
  });
  const metrics = new Metrics();
  const services = await openServices(config, app.log, { clock: options.clock, metrics, worker: Boolean(options.worker) });
  const { core } = services;
  metrics.watchHashGate(core.hashGate);
  app.addHook('onClose', () => services.close());
  // Other instances and the CLI change sessions, users and keys too; hear about it.
  await services.store.watchPeers();

  await app.register(cors, { origin: '*', methods: ['GET', 'POST', 'DELETE', 'OPTIONS'] });
  // Routes at the root (/openapi.json, /metrics, /) answer errors as the resource routes do, not in
  // fastify's own shape; each API's scope sets its own.
  useDialectErrorHandler(app, resourceErrors);
  await registerOpenApi(app, { publicUrl: config.publicUrl });
  registerBodyParsers(app);
  registerInputChecks(app);
  registerMetrics(app, metrics, core.guard, config.metricsToken, options.worker ? workerMetrics(metrics.registry) : undefined);
  for (const api of HTTP_APIS) await app.register(inDialect(api.errors, api.routes), { prefix: api.prefix, core, profile: core.profiles[api.name] });
  await app.register(resetPageRoutes, { core, minLength: config.passwordMinLength });
  await app.register(inDialect(resourceErrors, resourceRoutes), {
    core,
    issuer: config.issuer,
    publicUrl: config.publicUrl,
    introspectionToken: config.introspectionToken,
  });
  if (config.adminToken) await app.register(inDialect(adminErrors, adminRoutes), { prefix: '/admin', core, adminToken: config.adminToken, importMaxBytes: config.importMaxBytes });
  else await app.register(adminDisabledRoutes, { prefix: '/admin' });
  await app.register(indexRoutes, {
    adminOn: Boolean(config.adminToken),
    introspectionOn: Boolean(config.introspectionToken),
    metricsTokenSet: Boolean(config.metricsToken),
  });

  // Expired codes and sessions are dead weight; sweep them now and then. Among cluster workers
  // the first sweeps (its replacement after a crash too): N sweeps would delete the same rows
  // N times over, contending with requests for the store's write lock.
  if ((options.worker?.index ?? 0) === 0) {
    const sweep = setInterval(() => void core.sweep().catch((err) => app.log.error({ err }, 'sweep failed')), 3_600_000);
    sweep.unref();
    app.addHook('onClose', async () => clearInterval(sweep));
  }

  // Token answers must not be cached by any proxy or browser (RFC 6749 §5.1); routes that
  // may be cached (JWKS, the stylesheet) say so themselves.
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
  });

  if (!options.worker) logSwitches(app.log, config, services.mailer);
  return { app, core, services };
}

/** What is on and off at this start, and why: one line each, so the first screen of a log says it all. */
export function logSwitches(log: Logger, config: Config, mailer: Mailer) {
  const unsafeInProduction = productionWarning(config);
  if (unsafeInProduction) log.warn({ production: true }, unsafeInProduction);
  if (config.smtpUrl) log.info({ mail: mailer.describe }, `mail: sent by SMTP through ${mailer.describe}`);
  else log.warn({ mail: mailer.describe }, `mail: written to the ${mailer.describe}, not sent (LATCHKEY_SMTP_URL is not set); read it with \`latchkey outbox\``);
  log.info({ admin: Boolean(config.adminToken) },
    config.adminToken ? 'admin API: on at /admin (LATCHKEY_ADMIN_TOKEN is set)' : 'admin API: off (LATCHKEY_ADMIN_TOKEN is not set)');
  log.info({ introspection: Boolean(config.introspectionToken) },
    config.introspectionToken ? 'introspection: on at /introspect (LATCHKEY_INTROSPECTION_TOKEN is set)' : 'introspection: off (LATCHKEY_INTROSPECTION_TOKEN is not set)');
  if (config.metricsToken) log.info({ metrics: 'token' }, 'metrics: /metrics needs LATCHKEY_METRICS_TOKEN');
  else log.warn({ metrics: 'open' }, 'metrics: /metrics is open to anyone who reaches it (LATCHKEY_METRICS_TOKEN is not set)');
}
