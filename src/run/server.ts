// `latchkey serve`: listens, says "ready" only once it does, and stops cleanly on SIGTERM/SIGINT
// (requests in flight and queued mail finish, within LATCHKEY_SHUTDOWN_TIMEOUT). With
// LATCHKEY_WORKERS above 1 the port is served by a cluster of processes (src/run/cluster.ts); with 1,
// by this process alone, as it always was.
import cluster from 'node:cluster';
import type { Config } from '../platform/config.ts';
import { buildApp } from '../app/app.ts';
import { listen, stopOnSignals } from './listen.ts';

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
