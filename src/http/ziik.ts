// Ziik authentication API, /api/*: answers are arrays of {jwt, expires} with Unix seconds,
// `Authorization: Bearer`, and every documented curl line works as written (JSON sent with
// curl's default form content type, renew called as GET).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthError } from '../core/errors.ts';
import { TokenInvalid } from '../core/errors.ts';
import type { TokenSet } from '../core/sessions.ts';
import type { ApiOptions, HttpApi } from './api.ts';
import { credentialsFrom } from './authorization.ts';
import { stringFields } from './bodies.ts';
import type { DialectErrors } from './dialect-errors.ts';
import { int, noContent, obj, ok, type Operation, str } from './openapi-shapes.ts';
import { requestContext } from './request-context.ts';

const error = (status: number, message: string, headers?: Record<string, string>) => ({ status, body: { message }, headers });
const withMessage = (status: number) => (e: AuthError) => error(status, e.message);
const unauthenticated = () => error(401, 'Unauthenticated.', { 'www-authenticate': 'Bearer realm="api"' });

const errors: DialectErrors = {
  auth: {
    invalid_credentials: () => error(401, 'Invalid credentials.'),
    user_disabled: () => error(401, 'Invalid credentials.'),
    password_change_required: withMessage(401),
    too_many_attempts: withMessage(429),
    rate_limited: withMessage(429),
    token_expired: unauthenticated,
    token_invalid: unauthenticated,
    token_revoked: unauthenticated,
    refresh_expired: unauthenticated,
    foreign_session: unauthenticated,
    user_not_found: unauthenticated,
    code_mismatch: () => error(400, 'This password reset token is invalid.'),
    expired_code: withMessage(400),
    externally_managed: () => error(403, 'This user is managed externally and cannot reset the password here.'),
    password_policy: (e) => ({ status: 422, body: { message: e.message, errors: { password: [e.message] } } }),
    // Laravel's 422: the message, and the messages of each field at fault.
    validation: (e) => ({ status: 422, body: { message: e.message, errors: e.field ? { [e.field]: [e.message] } : {} } }),
  },
  badRequest: (problem) => ({
    status: problem.status === 400 ? 422 : problem.status,
    body: {
      message: problem.message,
      errors: Object.fromEntries(Object.entries(problem.fields).map(([f, why]) => [f, [`The ${f} field ${why}.`]])),
    },
  }),
  notFound: () => error(404, 'Not Found.'),
  internal: () => error(500, 'Server Error.'),
  // Laravel's words for a 503.
  unavailable: () => error(503, 'Service Unavailable.'),
  fallback: withMessage(400),
};

const jwtBody = (tokens: TokenSet) => [{ jwt: tokens.accessToken, expires: tokens.accessExpiresAt }];

// ---- what the routes answer, as /openapi.json documents it (test/openapi.test.ts checks real answers against it) ----

const jwtShape = { type: 'array', minItems: 1, maxItems: 1, items: obj({ jwt: str, expires: int }) };

/** By method and path within the prefix. */
const operations: Record<string, Operation> = {
  'POST /authenticate': { summary: 'Log in by email', responses: { 200: ok('A token', jwtShape) } },
  'GET /renew': { summary: 'Renew a token (same session)', security: 'bearerJwt', responses: { 200: ok('A token', jwtShape) } },
  'POST /renew': { summary: 'Renew a token (same session)', security: 'bearerJwt', responses: { 200: ok('A token', jwtShape) } },
  'POST /password/request': { summary: 'Mail a reset link (the same answer for an unknown user)', responses: { 204: noContent } },
  'POST /password/reset': { summary: 'Set a password with a link token', responses: { 204: noContent } },
};

/** The error body every route documents (OpenAPI's `default` answer). */
const errorBody = obj({ message: str, errors: { type: 'object', additionalProperties: { type: 'array', items: str } } }, ['message']);

async function routes(app: FastifyInstance, { core, profile }: ApiOptions): Promise<void> {

  app.post<{ Body: { username: string; password: string } }>(
    '/authenticate',
    { schema: { body: stringFields(['username', 'password']) } },
    async (request) => {
      return jwtBody(await core.sessions.loginForTokens(request.body.username, request.body.password, profile, requestContext(request)));
    },
  );

  const renew = async (request: FastifyRequest) => {
    const token = credentialsFrom(request, ['Bearer']);
    if (!token) throw TokenInvalid('Missing bearer token.');
    return jwtBody(await core.sessions.renew(token, profile));
  };
  app.get('/renew', renew);
  app.post('/renew', renew);

  app.post<{ Body: { email: string } }>(
    '/password/request',
    { schema: { body: stringFields(['email']) } },
    async (request, reply) => {
      await core.recovery.requestLink(request.body.email, requestContext(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { token: string; email: string; password: string; password_confirm: string } }>(
    '/password/reset',
    { schema: { body: stringFields(['token', 'email', 'password', 'password_confirm']) } },
    async (request, reply) => {
      const { token, email, password, password_confirm } = request.body;
      await core.recovery.resetWithLink({ token, email, password, passwordConfirm: password_confirm }, requestContext(request));
      return reply.code(204).send();
    },
  );
}

export const ziikApi: HttpApi = { routes, errors, errorBody, operations };
