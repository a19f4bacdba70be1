// GET /metrics for Prometheus, and the hook that times every request by its route pattern.
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/registry.ts';
import type { Guard } from '../core/guard.ts';
import { checkBearer } from './operator-token.ts';

/**
 * `collect` gives the text a scrape answers: this process's registry, or under a cluster every
 * worker's added up (src/metrics/cluster.ts).
 */
export function registerMetrics(app: FastifyInstance, metrics: Metrics, guard: Guard, token?: string, collect: () => Promise<string> = () => metrics.registry.metrics()): void {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: a label per token or username would grow without bound.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get('/metrics', async (request, reply) => {
    if (token) {
      const check = await checkBearer(request, token, guard);
      if (!check.ok && check.retryAfter) return reply.code(429).header('retry-after', String(check.retryAfter)).send({ error: 'rate_limited', error_description: 'Too many wrong metrics tokens from this address; try again later.' });
      if (!check.ok) return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').send({ error: 'unauthorized', error_description: 'Metrics token required.' });
    }
    return reply.type(metrics.registry.contentType).send(await collect());
  });
}
