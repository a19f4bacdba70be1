// Wires the store, mailer, limits, core and HTTP dialects into one server.
import Fastify, { type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { Store } from './store/store.ts';
import { createMailer, type Mailer } from './mail/mailer.ts';
import { outboxDir } from './mail/outbox.ts';
import { limitsOn, redisTallies, type Limits } from './core/limits.ts';
import { createCore, type Core } from './core/index.ts';
import { OldService } from './upstream/old-service.ts';
import { registerBodyParsers } from './http/common.ts';
import { registerOpenApi } from './http/openapi.ts';
import { Background } from './background.ts';
import { Metrics } from './metrics.ts';
import { registerMetrics } from './http/metrics.ts';
import { wikimediaRoutes } from './http/wikimedia.ts';
import { resourceRoutes } from './http/resource.ts';
import { adminRoutes, adminDisabledRoutes } from './http/admin.ts';
import { indexRoutes } from './http/index-page.ts';
import { roypiRoutes } from './http/roypi.ts';
import { ziikRoutes } from './http/ziik.ts';
import { resetPageRoutes } from './http/reset-page.ts';

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
export async function openServices(config: Config, log: Logger, options: { clock?: () => number; metrics?: Metrics } = {}): Promise<Services> {
  const store = Store.open({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let limits: Limits | undefined;
  try {
    const migrated = await store.migrate();
    const clock = options.clock ?? Date.now;
    // Tallies live beside the store, so the CLI and every instance see the same lockouts.
    const tallies = store.openTallies();
    if (config.redisUrl) {
      // No offline queue: while Redis is down a command fails at once and the limits count in
      // the store meanwhile, instead of holding the login until Redis returns.
      const client = new Redis(config.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
      let down = false;
      client.on('error', (err) => {
        if (!down) log.warn({ err: err.message }, 'redis unavailable; limits count in the store meanwhile');
        down = true;
      });
      client.on('ready', () => {
        if (down) log.info('redis is back');
        down = false;
      });
      limits = limitsOn(redisTallies(client, config.redisPrefix, tallies), 'redis', clock, async () => {
        client.disconnect();
        await tallies.close();
      });
      await client.connect();
    } else {
      limits = limitsOn(tallies, 'store', clock, () => tallies.close());
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
    if (upstream) log.info({ from: upstream.describe }, 'users without a password here are migrated from the old service at their first login');
    const core = await createCore({ config, store, mailer, limits, background, clock: options.clock, onEvent: options.metrics?.onEvent, upstream });
    const openLimits = limits;
    return {
      store,
      migrated,
      background,
      mailer,
      limits: openLimits,
      core,
      async close() {
        await background.drain();
        await openLimits.close();
        await store.close();
      },
    };
  } catch (error) {
    await limits?.close();
    await store.close();
    throw error;
  }
}

/** proxy-addr's trust function for "the nearest n hops are proxies". */
const hops = (n: number) => (_address: string, hop: number) => hop < n;

// Never log a query string: reset links carry their token there.
const withoutQuery = (url: string) => url.split('?')[0];

export async function buildApp(config: Config, options: { clock?: () => number; logger?: boolean } = {}) {
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: config.logLevel,
            redact: ['req.headers.authorization', 'req.headers.cookie'],
            serializers: {
              req: (req) => ({ method: req.method, url: withoutQuery(req.url), remoteAddress: req.ip }),
            },
          },
    bodyLimit: 64 * 1024,
    // Roypi documents trailing slashes, the others none; accept either everywhere.
    routerOptions: { ignoreTrailingSlash: true },
    // fastify fails closed on a bare hop count (it cannot check the peer is a proxy); the
    // operator who sets one says they run behind that many proxies, so trust that many hops.
    trustProxy: typeof config.trustProxy === 'number' ? hops(config.trustProxy) : config.trustProxy,
    // No type coercion: a number where a password should be is a client bug to report, not to guess at.
    ajv: { customOptions: { allErrors: true, coerceTypes: false } },
  });
  const metrics = new Metrics();
  const services = await openServices(config, app.log, { clock: options.clock, metrics });
  const { core } = services;
  app.addHook('onClose', () => services.close());
  // Other instances and the CLI change sessions, users and keys too; hear about it.
  await services.store.watchPeers();

  await app.register(cors, { origin: '*', methods: ['GET', 'POST', 'DELETE', 'OPTIONS'] });
  await registerOpenApi(app, { publicUrl: config.publicUrl });
  registerBodyParsers(app);
  registerMetrics(app, metrics, config.metricsToken);
  await app.register(wikimediaRoutes, { prefix: '/v1', core });
  await app.register(roypiRoutes, { prefix: '/auth', core });
  await app.register(ziikRoutes, { prefix: '/api', core });
  await app.register(resetPageRoutes, { core, minLength: config.passwordMinLength });
  await app.register(resourceRoutes, {
    core,
    issuer: config.issuer,
    publicUrl: config.publicUrl,
    introspectionToken: config.introspectionToken,
  });
  if (config.adminToken) await app.register(adminRoutes, { prefix: '/admin', core, adminToken: config.adminToken });
  else await app.register(adminDisabledRoutes, { prefix: '/admin' });
  await app.register(indexRoutes, {
    adminOn: Boolean(config.adminToken),
    introspectionOn: Boolean(config.introspectionToken),
    metricsTokenSet: Boolean(config.metricsToken),
  });

  // Expired codes and sessions are dead weight; sweep them now and then.
  const sweep = setInterval(() => void core.sweep().catch((err) => app.log.error({ err }, 'sweep failed')), 3_600_000);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  // Token answers must not be cached by any proxy or browser (RFC 6749 §5.1); routes that
  // may be cached (JWKS, the stylesheet) say so themselves.
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
  });

  app.log.info({ store: core.store.describe, mail: services.mailer.describe, limits: services.limits.backend }, 'latchkey ready');
  if (!config.smtpUrl) app.log.warn({ outbox: services.mailer.describe }, 'LATCHKEY_SMTP_URL is not set: mail is written to files, not sent');
  return { app, core, services };
}
