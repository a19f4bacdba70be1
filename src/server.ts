// `latchkey serve`: listens, says "ready" only once it does, and stops cleanly on SIGTERM/SIGINT
// (requests in flight and queued mail finish, within LATCHKEY_SHUTDOWN_TIMEOUT). With
// LATCHKEY_WORKERS above 1 the port is served by a cluster of processes (src/cluster.ts); with 1,
// by this process alone, as it always was.
import cluster from 'node:cluster';
import type { Config } from './config.ts';
import { buildApp } from './app.ts';
import { listenFailure } from './startup-errors.ts';

type Built = Awaited<ReturnType<typeof buildApp>>;

export async function serve(config: Config): Promise<void> {
  if (cluster.isWorker) {
    const { serveWorker } = await import('./cluster.ts');
    return serveWorker(config);
  }
  if (config.stopWithParent) stopWhenOrphaned();
  if (config.workers > 1) {
    const { servePrimary } = await import('./cluster.ts');
    return servePrimary(config);
  }
  const { app, services } = await buildApp(config);
  stopOnSignals({ app, services }, config);
  const listening = await listen(app, config);
  app.log.info({ listening, publicUrl: config.publicUrl, issuer: config.issuer }, `latchkey ready on ${listening}; public URL ${config.publicUrl}`);
}

/** Listens on HOST:PORT and answers where; a failure an operator can fix is a StartupError. */
export async function listen(app: Built['app'], config: Config): Promise<string> {
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await app.close();
    throw listenFailure(error, config) ?? error;
  }
  const address = app.server.address();
  return typeof address === 'object' && address
    ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
    : String(address);
}

/**
 * SIGTERM/SIGINT finish requests in flight and queued mail, then exit 0 (1 past the timeout).
 * A cluster worker says it at debug level: its primary tells the operator, once.
 */
export function stopOnSignals({ app, services }: Pick<Built, 'app' | 'services'>, config: Config, options: { quiet?: boolean } = {}): void {
  let stopping = false;
  const say = options.quiet ? app.log.debug.bind(app.log) : app.log.info.bind(app.log);
  const stop = (signal: NodeJS.Signals) => {
    // A terminal's Ctrl-C reaches both npm and node, and npm passes it on: the second is no news.
    if (stopping) return;
    stopping = true;
    const seconds = config.shutdownTimeoutSeconds;
    say({ signal, timeoutSeconds: seconds }, `${signal}: shutting down; finishing requests in flight and queued mail (at most ${seconds} s)`);
    const deadline = setTimeout(() => {
      app.log.error(
        { unfinishedJobs: services.background.size },
        `shutdown did not finish within ${seconds} s (LATCHKEY_SHUTDOWN_TIMEOUT); exiting with ${services.background.size} background job(s) unfinished`,
      );
      process.exit(1);
    }, seconds * 1000);
    // Mail waiting to retry gets one last attempt now instead of its full delay.
    services.background.stop();
    app.close().then(
      () => {
        clearTimeout(deadline);
        say('stopped');
        process.exit(0);
      },
      (err) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // In place before "ready" is logged: whoever reads that line may signal at once.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * Under `npm start` the server is npm's child (npm's shell execs node), and a supervisor that
 * kills npm with SIGKILL would leave it serving, unsupervised, on the port. Once npm is gone the
 * server is handed to another parent: it then stops as on SIGTERM (and a primary stops its workers).
 */
function stopWhenOrphaned(): void {
  const parent = process.ppid;
  const check = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(check);
    process.kill(process.pid, 'SIGTERM');
  }, 250);
  check.unref();
}
