// For resource servers: online verification (/userinfo, /forward-auth, /introspect), the JWKS and OIDC discovery.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAuthError } from '../core/errors.ts';
import type { Core } from '../core/index.ts';
import { JWKS_MAX_AGE_SECONDS } from '../core/keys.ts';
import type { Verified } from '../core/sessions.ts';
import { credentialsFrom, schemeOf } from './authorization.ts';
import { stringFields } from './bodies.ts';
import { sendReply, type DialectErrors, type ErrorReply } from './dialect-errors.ts';
import { checkBearer } from './operator-token.ts';
import { tokenSchemeRefusal } from './token-scheme.ts';
import { STORE_RETRY_AFTER_SECONDS } from '../store/faults.ts';

/** /ready's own deadline for the store's answer, ms: a probe must hear back before it gives up. */
const READY_TIMEOUT_MS = 2000;

// RFC 6750: a missing token gets a bare challenge; a bad one says invalid_token.
const invalidToken = (description: string): ErrorReply => ({
  status: 401,
  body: { error: 'invalid_token', error_description: description },
  headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` },
});

/** Every route outside the three APIs, the admin API and the reset page answers in this shape (RFC 6749 §5.2's). */
export const resourceErrors: DialectErrors = {
  auth: {},
  badRequest: (problem) => ({ status: problem.status, body: { error: 'invalid_request', error_description: problem.message } }),
  notFound: () => ({ status: 404, body: { error: 'not_found', error_description: 'Not Found. GET / lists what this server serves.' } }),
  internal: () => ({ status: 500, body: { error: 'server_error', error_description: 'Internal Server Error.' } }),
  unavailable: () => ({ status: 503, body: { error: 'temporarily_unavailable', error_description: 'The store is unavailable; try again later.' } }),
  fallback: (e) => invalidToken(e.message),
};

/**
 * A name or address as a header value: UTF-8, percent-encoded per RFC 3986 (all but the
 * unreserved A-Z a-z 0-9 - . _ ~). Raw non-ASCII is not valid in a header and proxies
 * mangle it; this is plain ASCII, decodes with any URL decoder, and cannot be confused.
 */
function headerValue(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

interface ResourceOptions {
  core: Core;
  issuer: string;
  publicUrl: string;
  /** Bearer token resource servers present to /introspect; the endpoint is off without it. */
  introspectionToken?: string;
}

export async function resourceRoutes(app: FastifyInstance, { core, issuer, publicUrl, introspectionToken }: ResourceOptions): Promise<void> {
  /**
   * Online verification of the request's token. A request in the Roypi scheme (`Token …`) is
   * refused in Roypi's shape; any other in RFC 6750's. Undefined when a refusal was sent.
   */
  const verifyRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<Verified | undefined> => {
    const roypi = schemeOf(request) === 'token';
    const token = credentialsFrom(request, ['Bearer', 'Token']);
    if (!token) {
      if (roypi) return void sendReply(reply, tokenSchemeRefusal()!);
      void reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="latchkey"')
        .send({ error: 'invalid_request', error_description: 'Missing bearer token.' });
      return undefined;
    }
    try {
      return await core.sessions.verify(token);
    } catch (error) {
      const refusal = roypi && isAuthError(error) ? tokenSchemeRefusal(error) : undefined;
      if (!refusal) throw error;
      return void sendReply(reply, refusal);
    }
  };

  app.get('/userinfo', async (request, reply) => {
    const verified = await verifyRequest(request, reply);
    if (!verified) return reply;
    const { claims, user } = verified;
    return {
      sub: claims.sub,
      username: user.username,
      preferred_username: user.username,
      email: user.email ?? undefined,
      sid: claims.sid,
      iss: claims.iss,
      aud: claims.aud,
      iat: claims.iat,
      exp: claims.exp,
      jti: claims.jti,
      token_use: claims.token_use,
    };
  });

  // For reverse proxies (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz): 200 with
  // the user in headers for a live token, 401 otherwise. Online, so revocation is seen at once.
  app.get('/forward-auth', async (request, reply) => {
    const verified = await verifyRequest(request, reply);
    if (!verified) return reply;
    const { claims, user } = verified;
    return reply
      .headers({
        'x-auth-user-id': claims.sub,
        'x-auth-username': headerValue(user.username),
        ...(user.email ? { 'x-auth-email': headerValue(user.email) } : {}),
        'x-auth-session': claims.sid,
      })
      .code(200)
      .send();
  });

  if (introspectionToken) {
    // RFC 7662. Any failure to verify is simply `active: false`, as the RFC asks.
    app.post<{ Body: { token: string; token_type_hint?: string } }>(
      '/introspect',
      { schema: { body: stringFields(['token'], ['token_type_hint']) } },
      async (request, reply) => {
        const check = await checkBearer(request, introspectionToken, core.guard);
        if (!check.ok && check.retryAfter) {
          return reply.code(429).header('retry-after', String(check.retryAfter)).send({ error: 'rate_limited' });
        }
        if (!check.ok) return reply.code(401).header('www-authenticate', 'Bearer realm="introspection"').send({ error: 'invalid_client' });
        try {
          const { claims, user } = await core.sessions.verify(request.body.token);
          return {
            active: true,
            token_type: 'access_token',
            sub: claims.sub,
            username: user.username,
            iss: claims.iss,
            aud: claims.aud,
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
            sid: claims.sid,
          };
        } catch (error) {
          if (isAuthError(error)) return { active: false };
          throw error;
        }
      },
    );
  } else {
    // Off: say which setting turns it on, rather than a bare 404 that looks like a wrong URL.
    app.route({
      method: ['GET', 'POST'],
      url: '/introspect',
      schema: { hide: true },
      handler: async (_request, reply) =>
        reply.code(404).send({
          error: 'introspection_disabled',
          error_description: 'Token introspection is off: set LATCHKEY_INTROSPECTION_TOKEN to turn it on.',
        }),
    });
  }

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    // New keys are published this long before they sign, so a cached copy is never stale for a live token.
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    return core.keys.jwks();
  });

  app.get('/.well-known/openid-configuration', async () => ({
    issuer,
    jwks_uri: `${publicUrl}/.well-known/jwks.json`,
    userinfo_endpoint: `${publicUrl}/userinfo`,
    revocation_endpoint: `${publicUrl}/v1/token-revoke`,
    ...(introspectionToken ? { introspection_endpoint: `${publicUrl}/introspect` } : {}),
    response_types_supported: ['token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...new Set(core.keys.list().map((k) => k.alg))],
    claims_supported: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'sid', 'token_use', 'username', 'email'],
  }));

  // Liveness: the process answers. Readiness: it can also reach its store. The `z` names are
  // the ones Kubernetes users type.
  const health = async () => ({ status: 'ok' });
  // Ready means the store can take a write: it answers within READY_TIMEOUT_MS, and no recent
  // write failed for the store's sake (a full disk still answers SELECT 1).
  const ready = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      await core.store.ping(READY_TIMEOUT_MS);
    } catch (err) {
      request.log.warn({ why: (err as Error).message }, 'not ready: the store does not answer');
      return reply.code(503).header('retry-after', String(STORE_RETRY_AFTER_SECONDS)).send({ status: 'unavailable' });
    }
    const problem = core.store.writeProblem();
    if (problem) {
      request.log.warn({ why: problem }, 'not ready: a recent write failed');
      return reply.code(503).header('retry-after', String(STORE_RETRY_AFTER_SECONDS)).send({ status: 'unavailable' });
    }
    // Redis unreachable: logins still work, on the store's counts (lockouts are kept there
    // anyway). Ready, so a load balancer does not take every instance out over a shared Redis,
    // and saying what is degraded.
    const limits = core.guard.degraded();
    return limits ? { status: 'degraded', limits } : { status: 'ok' };
  };
  for (const url of ['/health', '/healthz']) app.get(url, health);
  for (const url of ['/ready', '/readyz']) app.get(url, ready);
}
