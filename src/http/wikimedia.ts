// Wikimedia Enterprise authentication API, /v1/*: Cognito-style, errors as {status, message}.
import type { FastifyInstance } from 'fastify';
import type { AuthError } from '../core/errors.ts';
import type { TokenSet } from '../core/sessions.ts';
import type { ApiOptions, HttpApi } from './api.ts';
import { stringFields } from './bodies.ts';
import type { DialectErrors } from './dialect-errors.ts';
import { int, noContent, obj, ok, type Operation, str } from './openapi-shapes.ts';
import { requestContext } from './request-context.ts';

const error = (status: number, message: string) => ({ status, body: { status, message } });
const unauthorized = () => error(401, 'Unauthorized.');
const withMessage = (status: number) => (e: AuthError) => error(status, e.message);

const errors: DialectErrors = {
  auth: {
    invalid_credentials: () => error(401, 'Incorrect username or password.'),
    user_disabled: () => error(401, 'User is disabled.'),
    too_many_attempts: () => error(429, 'Password attempts exceeded.'),
    rate_limited: withMessage(429),
    limit_exceeded: () => error(429, 'Refresh tokens limit has been exceeded.'),
    token_expired: unauthorized,
    token_invalid: unauthorized,
    token_revoked: unauthorized,
    refresh_expired: unauthorized,
    foreign_session: unauthorized,
    user_not_found: unauthorized,
    code_mismatch: withMessage(401),
    expired_code: withMessage(401),
    password_policy: (e) => error(400, `Password does not conform to policy: ${e.message}`),
    externally_managed: withMessage(403),
    validation: withMessage(422),
  },
  // The live service answers 422 for a body it cannot use, malformed JSON included.
  badRequest: (problem) => error(problem.status === 400 ? 422 : problem.status, problem.message),
  notFound: () => error(404, 'Not Found.'),
  internal: () => error(500, 'Internal Server Error.'),
  unavailable: () => error(503, 'Service Unavailable.'),
  fallback: () => error(400, 'Bad Request.'),
};

function tokensBody(tokens: TokenSet, expiresIn: number) {
  return {
    id_token: tokens.idToken,
    access_token: tokens.accessToken,
    ...(tokens.refreshToken ? { refresh_token: tokens.refreshToken } : {}),
    expires_in: expiresIn,
  };
}

// ---- what the routes answer, as /openapi.json documents it (test/openapi.test.ts checks real answers against it) ----

const tokensShape = obj({ id_token: str, access_token: str, refresh_token: str, expires_in: int }, ['id_token', 'access_token', 'expires_in']);
const challengeShape = obj({ challenge_name: { type: 'string', const: 'NEW_PASSWORD_REQUIRED' }, session: str });

/** By method and path within the prefix. */
const operations: Record<string, Operation> = {
  'POST /login': { summary: 'Log in; a temporary password answers a NEW_PASSWORD_REQUIRED challenge', responses: { 200: ok('Tokens, or a challenge', { oneOf: [tokensShape, challengeShape] }) } },
  'POST /token-refresh': { summary: 'New access and ID tokens for a refresh token', responses: { 200: ok('Tokens', tokensShape) } },
  'POST /token-revoke': { summary: 'End the session of a refresh token', responses: { 204: noContent } },
  'POST /forgot-password': { summary: 'Mail a reset code (the same answer for an unknown user)', responses: { 204: noContent } },
  'POST /forgot-password-confirm': { summary: 'Set a password with a mailed code', responses: { 204: noContent } },
  'POST /change-password': { summary: 'Change the password with the current one', responses: { 204: noContent } },
  'POST /new-password-required': { summary: 'Answer NEW_PASSWORD_REQUIRED', responses: { 200: ok('Tokens', tokensShape) } },
};

/** The error body every route documents (OpenAPI's `default` answer). */
const errorBody = obj({ status: int, message: str });

async function routes(app: FastifyInstance, { core, profile }: ApiOptions): Promise<void> {
  const expiresIn = profile.accessTtl;

  app.post<{ Body: { username: string; password: string } }>(
    '/login',
    { schema: { body: stringFields(['username', 'password']) } },
    async (request) => {
      const { username, password } = request.body;
      const result = await core.sessions.login(username, password, profile, requestContext(request));
      if (result.kind === 'challenge') return { challenge_name: result.challengeName, session: result.session };
      return tokensBody(result.tokens, expiresIn);
    },
  );

  app.post<{ Body: { username: string; refresh_token: string } }>(
    '/token-refresh',
    { schema: { body: stringFields(['username', 'refresh_token']) } },
    async (request) => tokensBody(await core.sessions.refresh(request.body.username, request.body.refresh_token, profile), expiresIn),
  );

  app.post<{ Body: { refresh_token: string } }>(
    '/token-revoke',
    { schema: { body: stringFields(['refresh_token']) } },
    async (request, reply) => {
      await core.sessions.revoke(request.body.refresh_token, profile, requestContext(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { username: string } }>(
    '/forgot-password',
    { schema: { body: stringFields(['username']) } },
    async (request, reply) => {
      await core.recovery.requestCode(request.body.username, requestContext(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { username: string; password: string; confirmation_code: string } }>(
    '/forgot-password-confirm',
    { schema: { body: stringFields(['username', 'password', 'confirmation_code']) } },
    async (request, reply) => {
      const { username, password, confirmation_code } = request.body;
      await core.recovery.confirmCode(username, confirmation_code, password, requestContext(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { access_token: string; previous_password: string; proposed_password: string } }>(
    '/change-password',
    { schema: { body: stringFields(['access_token', 'previous_password', 'proposed_password']) } },
    async (request, reply) => {
      const { access_token, previous_password, proposed_password } = request.body;
      await core.sessions.changePassword(access_token, previous_password, proposed_password, requestContext(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { session: string; username: string; new_password: string } }>(
    '/new-password-required',
    { schema: { body: stringFields(['session', 'username', 'new_password']) } },
    async (request) => {
      const { session, username, new_password } = request.body;
      const user = await core.challenges.answerNewPassword(session, username, new_password, requestContext(request));
      return tokensBody(await core.sessions.start(user, profile, requestContext(request)), expiresIn);
    },
  );
}

export const wikimediaApi: HttpApi = { routes, errors, errorBody, operations };
