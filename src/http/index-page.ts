// GET /: what this server serves, and how to turn on what is off, for whoever opens it first.
import type { FastifyInstance } from 'fastify';
import { APIS } from '../domain/apis.ts';

interface IndexOptions {
  adminOn: boolean;
  introspectionOn: boolean;
  metricsTokenSet: boolean;
}

export async function indexRoutes(app: FastifyInstance, { adminOn, introspectionOn, metricsTokenSet }: IndexOptions): Promise<void> {
  const index = {
    service: 'latchkey',
    apis: Object.fromEntries(APIS.map((api) => [api.name, api.prefix])),
    endpoints: {
      openapi: '/openapi.json',
      discovery: '/.well-known/openid-configuration',
      jwks: '/.well-known/jwks.json',
      userinfo: '/userinfo',
      forward_auth: '/forward-auth',
      introspection: introspectionOn ? '/introspect' : 'off: set LATCHKEY_INTROSPECTION_TOKEN to turn it on',
      admin: adminOn ? '/admin' : 'off: set LATCHKEY_ADMIN_TOKEN to turn it on',
      reset_page: '/reset-password',
      health: '/health',
      ready: '/ready',
      metrics: metricsTokenSet ? '/metrics (needs LATCHKEY_METRICS_TOKEN)' : '/metrics',
    },
  };
  app.get('/', async () => index);
}
