// Roypi authentication API, /auth/*, in django-rest-framework-jwt's conventions:
// field errors as {"field": ["..."]}, others as {"non_field_errors": ["..."]}, and
// `Authorization: Token <jwt>` on protected routes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isAuthError, type AuthError } from '../core/errors.ts';
import type { ApiOptions, HttpApi } from './api.ts';
import { credentialsFrom } from './authorization.ts';
import { stringFields } from './bodies.ts';
import { sendReply, type DialectErrors } from './dialect-errors.ts';
import { dateTime, int, obj, ok, type Operation, str } from './openapi-shapes.ts';
import { requestContext } from './request-context.ts';
import { REASONS, tokenSchemeRefusal } from './token-scheme.ts';

const nonField = (message: string) => ({ status: 400, body: { non_field_errors: [message] } });
const asNonField = (e: AuthError) => nonField(e.message);
const throttled = (e: AuthError) => ({
  status: 429,
  body: { detail: `Request was throttled. Expected available in ${e.retryAfter ?? 60} seconds.` },
});

const FIELD_MESSAGES: Record<string, string> = {
  'is required': 'This field is required.',
  'may not be blank': 'This field may not be blank.',
  'must be a string': 'Not a valid string.',
  'is too long': 'Ensure this field has no more than 4096 characters.',
};

const errors: DialectErrors = {
  auth: {
    ...Object.fromEntries(Object.entries(REASONS).map(([code, reason]) => [code, () => nonField(reason)])),
    password_change_required: asNonField,
    too_many_attempts: throttled,
    rate_limited: throttled,
    validation: (e) => ({ status: 400, body: { [e.field ?? 'non_field_errors']: [e.message] } }),
  },
  badRequest: (problem) => {
    const names = Object.keys(problem.fields);
    if (problem.status !== 400 || names.length === 0) return { status: problem.status, body: { detail: problem.message } };
    const body = Object.fromEntries(names.map((f) => [f, [FIELD_MESSAGES[problem.fields[f]] ?? 'Invalid value.']]));
    return { status: 400, body };
  },
  notFound: () => ({ status: 404, body: { detail: 'Not found.' } }),
  internal: () => ({ status: 500, body: { detail: 'A server error occurred.' } }),
  // django-rest-framework's ServiceUnavailable.
  unavailable: () => ({ status: 503, body: { detail: 'Service temporarily unavailable, try again later.' } }),
  fallback: asNonField,
};

/** django-rest-framework-jwt writes expiry as ISO-8601 with milliseconds and Z. */
const isoExpiry = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString();

const tokenBody = (token: string, exp: number, user: { username: string; id: number }) => ({
  token,
  expires_in: isoExpiry(exp),
  user: { username: user.username, id: user.id },
});

// ---- what the routes answer, as /openapi.json documents it (test/openapi.test.ts checks real answers against it) ----

const tokenShape = obj({ token: str, expires_in: dateTime, user: obj({ username: str, id: int }) });

/** By method and path within the prefix. */
const operations: Record<string, Operation> = {
  'POST /access_token/': {
    summary: 'Log in',
    responses: { 200: ok('A token', obj({ access_token: str, expires_in: dateTime, user: str })) },
  },
  'POST /refresh_token/': { summary: 'A new token, same original login', responses: { 200: ok('A token', tokenShape) } },
  'POST /verify_token/': { summary: 'Check a token online', responses: { 200: ok('The token and its user', tokenShape) } },
  'GET /user/': {
    summary: 'Who the token belongs to',
    security: 'roypiToken',
    responses: { 200: ok('The user', obj({ id: int, username: str, email: str })) },
  },
};

/** The error body every route documents (OpenAPI's `default` answer). */
const errorBody = {
  type: 'object',
  description: 'django-rest-framework: {"non_field_errors": [why]}, {"<field>": [why]}, or {"detail": why}',
  additionalProperties: { oneOf: [{ type: 'array', items: str }, str] },
};

async function routes(app: FastifyInstance, { core, profile }: ApiOptions): Promise<void> {
  const tokenSchema = { body: stringFields(['token']) };

  app.post<{ Body: { username: string; password: string } }>(
    '/access_token/',
    { schema: { body: stringFields(['username', 'password']) } },
    async (request) => {
      const tokens = await core.sessions.loginForTokens(request.body.username, request.body.password, profile, requestContext(request));
      return { access_token: tokens.accessToken, expires_in: isoExpiry(tokens.accessExpiresAt), user: tokens.user.username };
    },
  );

  app.post<{ Body: { token: string } }>('/refresh_token/', { schema: tokenSchema }, async (request) => {
    const tokens = await core.sessions.renew(request.body.token, profile);
    return tokenBody(tokens.accessToken, tokens.accessExpiresAt, tokens.user);
  });

  app.post<{ Body: { token: string } }>('/verify_token/', { schema: tokenSchema }, async (request) => {
    const { claims, user } = await core.sessions.verify(request.body.token);
    return tokenBody(request.body.token, claims.exp, user);
  });

  /** A protected route: who the `Token` belongs to. 401 {"detail"} with the Token challenge otherwise. */
  app.get('/user/', async (request: FastifyRequest, reply) => {
    const token = credentialsFrom(request, ['Token', 'JWT']);
    if (!token) return sendReply(reply, tokenSchemeRefusal()!);
    try {
      const { user } = await core.sessions.verify(token);
      return { id: user.id, username: user.username, email: user.email ?? '' };
    } catch (error) {
      const refusal = isAuthError(error) ? tokenSchemeRefusal(error) : undefined;
      if (!refusal) throw error;
      return sendReply(reply, refusal);
    }
  });
}

export const roypiApi: HttpApi = { routes, errors, errorBody, operations };
