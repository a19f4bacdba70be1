// Prometheus metrics, the one registry and every metric's definition: request rates and latencies
// per route, and every audit event by kind. The HTTP side (the timing hook, GET /metrics) is
// src/http/metrics.ts; the sum over a cluster's workers is ./cluster.ts.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditKind } from '../core/audit.ts';

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

  observeRequest(route: string, method: string, status: number, seconds: number) {
    this.requests.observe({ route, method, status: String(status) }, seconds);
  }
}
