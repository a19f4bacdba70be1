// For resource servers: online verification (/userinfo), the JWKS and OIDC discovery.
import type { FastifyInstance } from 'fastify';
import type { Core } from '../core/index.ts';
import { JWKS_MAX_AGE_SECONDS } from '../core/keys.ts';
import { credentialsFrom, useDialectErrors, type DialectErrors, type ErrorReply } from './common.ts';

// RFC 6750: a missing token gets a bare challenge; a bad one says invalid_token.
const invalidToken = (description: string): ErrorReply => ({
  status: 401,
  body: { error: 'invalid_token', error_description: description },
  headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` },
});

const errors: DialectErrors = {
  auth: {},
  badRequest: (problem) => ({ status: problem.status, body: { error: 'invalid_request', error_description: problem.message } }),
  notFound: () => ({ status: 404, body: { error: 'not_found', error_description: 'Not Found.' } }),
  internal: () => ({ status: 500, body: { error: 'server_error', error_description: 'Internal Server Error.' } }),
  fallback: (e) => invalidToken(e.message),
};

export async function resourceRoutes(app: FastifyInstance, { core, issuer, publicUrl }: { core: Core; issuer: string; publicUrl: string }): Promise<void> {
  useDialectErrors(app, errors);

  app.get('/userinfo', async (request, reply) => {
    const token = credentialsFrom(request, ['Bearer', 'Token']);
    if (!token) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="latchkey"')
        .send({ error: 'invalid_request', error_description: 'Missing bearer token.' });
    }
    const { claims, user } = await core.sessions.verify(token);
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
    response_types_supported: ['token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...new Set(core.keys.list().map((k) => k.alg))],
    claims_supported: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'sid', 'token_use', 'username', 'email'],
  }));

  app.get('/health', async () => ({ status: 'ok' }));
}
