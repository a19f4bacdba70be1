// What a single process and a cluster worker both do to serve: listen, and stop cleanly on
// SIGTERM/SIGINT. Apart from src/run/server.ts so that src/run/cluster.ts, which server.ts starts, need
// not import it back.
import type { Config } from '../platform/config.ts';
import type { buildApp } from '../app/app.ts';
import { listenFailure } from '../app/startup-errors.ts';

type Built = Awaited<ReturnType<typeof buildApp>>;

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
