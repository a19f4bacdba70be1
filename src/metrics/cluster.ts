// /metrics under LATCHKEY_WORKERS > 1: a scrape reaches one worker, but must count what every
// worker did, or each scrape would show another process's counters and Prometheus would read
// the jumps as resets. The worker that is scraped asks the primary, which collects every
// worker's metrics over the cluster's IPC channel and adds them up (prom-client's aggregation:
// counters and histograms summed, per-process gauges as prom-client's defaults say).
import cluster, { type Worker } from 'node:cluster';
import crypto from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** One worker's metrics, as getMetricsAsJSON gives them and aggregate takes them. */
type Part = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

type MetricsMessage =
  | { latchkey: 'metrics?'; id: string }
  | { latchkey: 'metrics'; id: string; text?: string; error?: string }
  | { latchkey: 'metrics-part?'; id: string }
  | { latchkey: 'metrics-part'; id: string; part: Part };

/** How long the primary waits for every worker's part; a worker that does not answer is left out. */
const COLLECT_TIMEOUT_MS = 2_000;

const isMetricsMessage = (m: unknown): m is MetricsMessage => typeof (m as MetricsMessage)?.latchkey === 'string' && (m as MetricsMessage).latchkey.startsWith('metrics');

/**
 * In a worker: answers the primary's requests for this worker's part, and returns the function
 * that gives the whole cluster's metrics, as text.
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  const waiting = new Map<string, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.latchkey === 'metrics-part?') {
      void registry.getMetricsAsJSON().then((part) => process.send?.({ latchkey: 'metrics-part', id: message.id, part } satisfies MetricsMessage));
    } else if (message.latchkey === 'metrics') {
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.text !== undefined) pending?.resolve(message.text);
      else pending?.reject(new Error(message.error ?? 'no metrics'));
    }
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = crypto.randomBytes(8).toString('hex');
      // A primary that never answers fails the scrape instead of holding it open.
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary did not answer with the cluster\'s metrics'));
      }, 2 * COLLECT_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (text) => (clearTimeout(timer), resolve(text)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      process.send?.({ latchkey: 'metrics?', id } satisfies MetricsMessage);
    });
}

/** In the primary: serves workers' requests for the cluster's metrics. */
export function serveClusterMetrics(workers: () => Worker[]): void {
  const collecting = new Map<string, { parts: Part[]; expected: number; done: () => void }>();
  let inFlight: Promise<{ text: string } | { error: string }> | undefined;
  const collect = () => {
    const id = crypto.randomBytes(8).toString('hex');
    const asked = workers();
    const parts: Part[] = [];
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, COLLECT_TIMEOUT_MS);
      collecting.set(id, { parts, expected: asked.length, done: () => (clearTimeout(timer), resolve()) });
      for (const worker of asked) worker.send({ latchkey: 'metrics-part?', id } satisfies MetricsMessage);
    })
      .then(() => AggregatorRegistry.aggregate(parts).metrics())
      .then(
        (text) => ({ text }),
        (error: Error) => ({ error: error.message }),
      )
      .finally(() => collecting.delete(id));
  };
  cluster.on('message', (from: Worker, message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.latchkey === 'metrics-part') {
      const gathering = collecting.get(message.id);
      if (!gathering) return;
      gathering.parts.push(message.part);
      if (gathering.parts.length === gathering.expected) gathering.done();
      return;
    }
    if (message.latchkey !== 'metrics?') return;
    // Scrapes that arrive while a collection runs share it: a flood of scrapes (the endpoint may
    // be open) costs one collection at a time, not one per scrape on every worker.
    inFlight ??= collect().finally(() => (inFlight = undefined));
    void inFlight.then((result) => {
      if (!from.isDead()) from.send({ latchkey: 'metrics', id: message.id, ...result } satisfies MetricsMessage);
    });
  });
}
