// `latchkey serve`: listens, says "ready" only once it does, and stops cleanly on SIGTERM/SIGINT
// (requests in flight and queued mail finish, within LATCHKEY_SHUTDOWN_TIMEOUT).
import type { Config } from './config.ts';
import { buildApp } from './app.ts';
import { listenFailure } from './startup-errors.ts';

export async function serve(config: Config): Promise<void> {
  const { app, services } = await buildApp(config);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    // A terminal's Ctrl-C reaches both npm and node, and npm passes it on: the second is no news.
    if (stopping) return;
    stopping = true;
    const seconds = config.shutdownTimeoutSeconds;
    app.log.info({ signal, timeoutSeconds: seconds }, `${signal}: shutting down; finishing requests in flight and queued mail (at most ${seconds} s)`);
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
        app.log.info('stopped');
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
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await app.close();
    throw listenFailure(error, config) ?? error;
  }
  const address = app.server.address();
  const listening =
    typeof address === 'object' && address
      ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : String(address);
  app.log.info({ listening, publicUrl: config.publicUrl, issuer: config.issuer }, `latchkey ready on ${listening}; public URL ${config.publicUrl}`);
}
