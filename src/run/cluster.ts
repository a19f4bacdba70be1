// LATCHKEY_WORKERS=N (N > 1): N processes serve one port through node:cluster's shared handle.
//
// The primary does the one-time work first (migrations, the first signing key, the secret
// check, the data dir's modes), so workers never race on it; then it forks the workers, says
// "ready" once all of them listen, restarts one that dies (with a growing delay, never in a
// hot loop), and on SIGTERM/SIGINT has every worker drain before it exits. It serves nothing.
//
// Workers share everything that decides: the store (sessions, users, keys; each worker's cache
// hears the others' changes through the store's change feed, src/store/peers.ts) and the limits
// (tallies in the store or Redis, never in a process's memory). Mail is sent by the worker
// that queued it; expired rows are swept by worker 0 alone.
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../platform/config.ts';
import { buildApp, logSwitches, openServices } from '../app/app.ts';
import { createLogger } from '../platform/log.ts';
import { StartupError, listenFailure } from '../app/startup-errors.ts';
import { listen, stopOnSignals } from './listen.ts';
import { serveClusterMetrics } from '../metrics/cluster.ts';

/** What a worker tells its primary. */
type WorkerMessage = { latchkey: 'listening'; listening: string } | { latchkey: 'failed'; message: string };

const INDEX_ENV = 'LATCHKEY_WORKER_INDEX';
/** A replacement waits 1 s, doubling for each worker that dies soon after its start, up to 30 s. */
export const RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that lived this long died of something new: its replacement waits the shortest delay again. */
const STABLE_MS = 60_000;
/** The primary's own deadline: the workers' LATCHKEY_SHUTDOWN_TIMEOUT, plus time to exit. */
const EXIT_GRACE_MS = 5_000;

function tell(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

/** A cluster worker: serves the port the primary shares, and tells it whether it could. */
export async function serveWorker(config: Config): Promise<void> {
  const index = Number(process.env[INDEX_ENV] ?? 0);
  let listening: string;
  try {
    const built = await buildApp(config, { worker: { index } });
    stopOnSignals(built, config, { quiet: true });
    listening = await listen(built.app, config);
  } catch (error) {
    // The primary says it, once for all workers; a bug keeps its stack.
    const message = error instanceof StartupError ? error.message : ((listenFailure(error, config)?.message ?? (error as Error)?.stack) || String(error));
    await tell({ latchkey: 'failed', message });
    process.exit(1);
  }
  // What `ps` (and the bench) shows: which process is which, and that this one serves.
  process.title = `latchkey worker ${index}`;
  await tell({ latchkey: 'listening', listening });
}

interface Slot {
  worker?: Worker;
  startedAt: number;
  /** Deaths in a row that came soon after a start: the next restart waits 2^streak seconds. */
  streak: number;
  restart?: NodeJS.Timeout;
}

/** The primary: one-time work, then N workers, kept at N until SIGTERM/SIGINT. */
export async function servePrimary(config: Config): Promise<void> {
  // The process to signal, told apart from its workers in `ps`.
  process.title = 'latchkey primary';
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  // The one-time work, said in the log as a single process says it.
  const services = await openServices(config, log);
  logSwitches(log, config, services.mailer);
  await services.close();

  const slots: Slot[] = [];
  const listening = new Set<number>();
  let state: 'starting' | 'ready' | 'stopping' = 'starting';
  let address = '';
  let failedStart: ((error: Error) => void) | undefined;
  let readyNow: (() => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    readyNow = resolve;
    failedStart = reject;
  });
  /** Exit statuses of workers during shutdown: 0 only if every one drained. */
  let cleanStop = true;

  const live = () => slots.filter((s) => s.worker && !s.worker.isDead()).map((s) => s.worker!);

  /** A start that cannot succeed: no worker may go on, and nothing is restarted. */
  const abortStart = (message: string) => {
    if (state !== 'starting') return;
    state = 'stopping';
    for (const worker of live()) worker.process.kill('SIGKILL');
    failedStart!(new StartupError(message));
  };

  const fork = (index: number) => {
    const slot = (slots[index] ??= { startedAt: 0, streak: 0 });
    slot.restart = undefined;
    const worker = cluster.fork({ [INDEX_ENV]: String(index) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    const pid = worker.process.pid;
    worker.on('message', (message: WorkerMessage) => {
      if (message?.latchkey === 'listening') {
        address = message.listening;
        if (state === 'starting') {
          listening.add(index);
          if (listening.size === config.workers) readyNow!();
        } else if (state === 'ready') log.info({ worker: index, pid }, `worker ${index} (pid ${pid}) is serving again`);
      } else if (message?.latchkey === 'failed') {
        if (state === 'starting') abortStart(message.message);
        else if (state === 'ready') log.error({ worker: index, pid, err: message.message }, `worker ${index} (pid ${pid}) could not start: ${message.message}`);
      }
    });
    worker.on('exit', (code, signal) => {
      if (state === 'stopping') {
        if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') cleanStop = false;
        if (live().length === 0) allStopped();
        return;
      }
      if (state === 'starting') {
        abortStart(`worker ${index} (pid ${pid}) exited before it listened (${signal ?? `code ${code}`})`);
        return;
      }
      // Died while serving: replace it, waiting longer each time it dies young.
      slot.streak = Date.now() - slot.startedAt < STABLE_MS ? slot.streak + 1 : 0;
      const delay = Math.min(RESTART_DELAY_MS * 2 ** Math.max(0, slot.streak - 1), MAX_RESTART_DELAY_MS);
      log.error(
        { worker: index, pid, code, signal, restartInMs: delay },
        `worker ${index} (pid ${pid}) exited unexpectedly (${signal ?? `code ${code}`}); starting a replacement in ${delay / 1000} s`,
      );
      slot.restart = setTimeout(() => fork(index), delay);
    });
  };

  let finish: (() => void) | undefined;
  const allStopped = () => finish?.();

  const stop = (signal: NodeJS.Signals) => {
    if (state === 'stopping') return;
    state = 'stopping';
    const seconds = config.shutdownTimeoutSeconds;
    log.info({ signal, timeoutSeconds: seconds, workers: live().length }, `${signal}: shutting down ${live().length} workers; each finishes its requests in flight and queued mail (at most ${seconds} s)`);
    for (const slot of slots) clearTimeout(slot.restart);
    const deadline = setTimeout(() => {
      const left = live();
      log.error({ workers: left.map((w) => w.process.pid) }, `shutdown did not finish within ${seconds} s (LATCHKEY_SHUTDOWN_TIMEOUT); killing ${left.length} worker(s)`);
      for (const worker of left) worker.process.kill('SIGKILL');
      process.exit(1);
    }, seconds * 1000 + EXIT_GRACE_MS);
    finish = () => {
      clearTimeout(deadline);
      if (cleanStop) log.info('stopped');
      else log.error('stopped; a worker did not finish cleanly');
      process.exit(cleanStop ? 0 : 1);
    };
    // Each worker drains as a single process does on the same signal (a terminal's Ctrl-C
    // reaches them directly too; a second signal is no news to them).
    for (const worker of live()) worker.process.kill('SIGTERM');
    if (live().length === 0) finish();
  };
  // A scrape of /metrics reaches one worker; it answers for all of them.
  serveClusterMetrics(live);
  // In place before any worker exists: whoever signals at once still gets a clean stop.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  for (let index = 0; index < config.workers; index++) fork(index);
  try {
    await ready;
  } catch (error) {
    // Wait for the workers to be gone, so the exit leaves nothing behind.
    await Promise.all(slots.map((s) => s.worker && !s.worker.isDead() && new Promise((resolve) => s.worker!.once('exit', resolve))));
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    throw error;
  }
  if (state !== 'starting') return;
  state = 'ready';
  const pids = live().map((w) => w.process.pid);
  log.info(
    { listening: address, publicUrl: config.publicUrl, issuer: config.issuer, workers: config.workers, pids },
    `latchkey ready on ${address}; public URL ${config.publicUrl}; ${config.workers} workers`,
  );
}
