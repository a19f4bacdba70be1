// Prometheus metrics, the one registry and every metric's definition: request rates and latencies
// per route, every audit event by kind, and the gate costly hash checks pass. The HTTP side (the
// timing hook, GET /metrics) is src/http/metrics.ts; the sum over a cluster's workers is ./cluster.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditKind } from '../core/audit.ts';
import type { HashGateStats } from '../core/passwords.ts';

export class Metrics {
  readonly registry = new Registry();
  private readonly events = new Counter({
    name: 'latchkey_auth_events_total',
    help: 'Audit events (logins, failed logins, revocations, password changes...) by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly requests = new Histogram({
    name: 'latchkey_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status, with their duration.',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
  }

  readonly onEvent = (kind: AuditKind) => this.events.inc({ kind });

  /** How busy the costly-hash gate is, and how many logins it turned away: counts only, never a client or a name. */
  watchHashGate(gate: { stats(): HashGateStats }) {
    new Gauge({
      name: 'latchkey_costly_hash_checks',
      help: 'Checks of costly (foreign or older) hashes now, running or waiting for a slot.',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const { running, waiting } = gate.stats();
        this.set({ state: 'running' }, running);
        this.set({ state: 'waiting' }, waiting);
      },
    });
    new Counter({
      name: 'latchkey_costly_hash_checks_total',
      help: "Logins at the costly-hash gate since the start: checked, or refused (their client or its network held its share, the queue could not clear within the wait, or the wait ran out).",
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        const { checked, refused } = gate.stats();
        // The gate keeps the totals; a scrape copies them.
        this.reset();
        this.inc({ outcome: 'checked' }, checked);
        this.inc({ outcome: 'refused' }, refused);
      },
    });
  }

  observeRequest(route: string, method: string, status: number, seconds: number) {
    this.requests.observe({ route, method, status: String(status) }, seconds);
  }
}
