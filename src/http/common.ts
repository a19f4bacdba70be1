// What every dialect shares: body parsing, reading credentials from headers, and one
// error handler per dialect that turns any failure into that dialect's own shape.
import querystring from 'node:querystring';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, type AuthErrorCode } from '../core/errors.ts';
import type { RequestContext } from '../core/context.ts';
import { safeEqual } from '../core/secrets.ts';

/** A body that could not be understood: malformed JSON, wrong type, missing fields. */
export interface BadRequest {
  /** Fields with what is wrong with each, when known. */
  fields: Record<string, string>;
  message: string;
  status: number;
}

export interface ErrorReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface DialectErrors {
  /** One row per core error code this dialect can meet. */
  auth: Partial<Record<AuthErrorCode, (error: AuthError) => ErrorReply>>;
  badRequest(problem: BadRequest): ErrorReply;
  notFound(): ErrorReply;
  internal(): ErrorReply;
  /** For a core error the table does not name. */
  fallback(error: AuthError): ErrorReply;
}

/** A form body as plain string fields; a repeated field keeps its first value. */
function parseForm(body: string): Record<string, string> {
  const form = querystring.parse(body);
  return Object.fromEntries(Object.entries(form).map(([k, v]) => [k, (Array.isArray(v) ? v[0] : v) ?? '']));
}

// curl's -d sends its data as application/x-www-form-urlencoded, and the Ziik docs send
// JSON that way. A form body that is a JSON object is read as JSON (by fastify's own
// parser, with its prototype-poisoning guard); any other is a form. Bodies with another
// content type, or none, are read the same way.
export function registerBodyParsers(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  const loose = (request: FastifyRequest, body: string, done: (err: Error | null, body?: unknown) => void) => {
    const trimmed = body.trim();
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) return json(request, trimmed, done);
    done(null, trimmed === '' ? {} : parseForm(body));
  };
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, loose);
  app.addContentTypeParser('*', { parseAs: 'string' }, loose);
}

const PROBLEMS: Record<string, (params: Record<string, unknown>) => string> = {
  required: () => 'is required',
  minLength: () => 'may not be blank',
  maxLength: () => 'is too long',
  type: (params) => `must be a ${params.type}`,
};

/** Failures from before a route runs (parsing, schema validation) as a 4xx problem. */
function toBadRequest(error: FastifyError): BadRequest | undefined {
  if (error.validation) {
    const fields: Record<string, string> = {};
    for (const issue of error.validation) {
      const params = issue.params as Record<string, unknown>;
      const field = (params.missingProperty as string | undefined) ?? issue.instancePath.split('/')[1];
      if (field && !fields[field]) fields[field] = PROBLEMS[issue.keyword]?.(params) ?? 'is not valid';
    }
    const names = Object.keys(fields);
    const message = names.length ? names.map((f) => `${f} ${fields[f]}`).join('; ') : 'Request body must be a JSON object.';
    return { fields, message, status: 400 };
  }
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error instanceof SyntaxError) {
    return { fields: {}, message: 'Request body is not valid JSON.', status: 400 };
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { fields: {}, message: 'Request body is too large.', status: 413 };
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { fields: {}, message: 'Unsupported content type.', status: 415 };
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return { fields: {}, message: error.message, status: error.statusCode };
  }
  return undefined;
}

function send(reply: FastifyReply, shape: ErrorReply) {
  if (shape.headers) reply.headers(shape.headers);
  return reply.code(shape.status).send(shape.body);
}

/** Installs a dialect's error and not-found handlers on its own scope. */
export function useDialectErrors(scope: FastifyInstance, errors: DialectErrors): void {
  scope.setErrorHandler((error: FastifyError | AuthError, request, reply) => {
    if (error instanceof AuthError) {
      const shape = (errors.auth[error.code] ?? errors.fallback)(error);
      if (error.retryAfter) reply.header('retry-after', String(error.retryAfter));
      return send(reply, shape);
    }
    const bad = toBadRequest(error);
    if (bad) return send(reply, errors.badRequest(bad));
    request.log.error({ err: error }, 'unhandled error');
    return send(reply, errors.internal());
  });
  scope.setNotFoundHandler((_request, reply) => send(reply, errors.notFound()));
}

/** The token after `Bearer ` (or another scheme) in Authorization, if any. */
export function credentialsFrom(request: FastifyRequest, schemes: string[]): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match) return undefined;
  return schemes.some((s) => s.toLowerCase() === match[1].toLowerCase()) ? match[2] : undefined;
}

/** Whether the request carries `Authorization: Bearer <secret>`, compared in constant time. */
export function hasBearer(request: FastifyRequest, secret: string): boolean {
  const given = credentialsFrom(request, ['Bearer']);
  return given !== undefined && safeEqual(given, secret);
}

export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof agent === 'string' ? agent : undefined };
}

/** JSON schema for a body of required, non-empty string fields. */
export function stringFields(required: string[], optional: string[] = []) {
  const properties: Record<string, object> = {};
  for (const name of [...required, ...optional]) properties[name] = { type: 'string', minLength: 1, maxLength: 4096 };
  return { type: 'object', required, properties } as const;
}
