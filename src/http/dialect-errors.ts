// Every failure answered in the shape of the API that was asked: each API's error mapping
// (DialectErrors) is given to its scope by the wiring (src/app/app.ts), and the scope's error handler
// turns any failure into that API's status, headers and body.
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, DependencyUnavailable, type AuthErrorCode } from '../core/errors.ts';
import { unavailability } from '../store/faults.ts';

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
  /** A dependency (the store) cannot serve now: a 503; the handler adds Retry-After. */
  unavailable(): ErrorReply;
  /** For a core error the table does not name. */
  fallback(error: AuthError): ErrorReply;
}

/** Where a dialect answers: the prefix of its scope ('' for the root) and its mapping. */
export interface DialectScope {
  prefix: string;
  errors: DialectErrors;
}

/** A body or field the server refuses before any route sees it; answered as a 400 in the dialect's shape. */
export function badInput(message: string, field?: string): FastifyError {
  const error = new Error(message) as FastifyError;
  error.statusCode = 400;
  if (field !== undefined) {
    error.validation = [{ keyword: 'controlCharacter', instancePath: `/${field}`, schemaPath: '', params: {}, message }];
  }
  return error;
}

const PROBLEMS: Record<string, (params: Record<string, unknown>) => string> = {
  required: () => 'is required',
  minLength: () => 'may not be blank',
  maxLength: () => 'is too long',
  type: (params) => `must be a ${params.type}`,
  controlCharacter: () => 'contains a control character',
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

/** Sends an error reply: status, headers and body. */
export function sendReply(reply: FastifyReply, shape: ErrorReply) {
  if (shape.headers) reply.headers(shape.headers);
  return reply.code(shape.status).send(shape.body);
}

/**
 * fastify's `frameworkErrors`, for the app's dialect scopes: a URL whose escapes are not UTF-8, or
 * a path parameter longer than `maxParamLength`, is refused before any route or scope is chosen;
 * answer it in the dialect its prefix names (the resource routes' at the root), not in fastify's own shape.
 */
export function frameworkErrorsIn(scopes: readonly DialectScope[]) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0];
    let best: DialectScope | undefined;
    for (const scope of scopes) {
      const { prefix } = scope;
      const within = prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
      if (within && (!best || prefix.length > best.prefix.length)) best = scope;
    }
    const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
    const message = status === 414 ? 'A part of the URL is too long.' : 'The URL is not valid.';
    if (!best) return reply.code(status).send({ error: 'invalid_request', error_description: message });
    return sendReply(reply, best.errors.badRequest({ status, message, fields: {} }));
  };
}

/** A plugin whose scope answers every failure, and every unknown path, in `errors`' shape. */
export function inDialect<Options extends object>(errors: DialectErrors, routes: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  return async (scope, options) => {
    useDialectErrorHandler(scope, errors);
    scope.setNotFoundHandler((_request, reply) => sendReply(reply, errors.notFound()));
    await routes(scope, options);
  };
}

/** Only the error handler (the root's not-found handler is the resource routes' own). */
export function useDialectErrorHandler(scope: FastifyInstance, errors: DialectErrors): void {
  scope.setErrorHandler((error: FastifyError | AuthError, request, reply) => {
    if (error instanceof AuthError) {
      const shape = (errors.auth[error.code] ?? errors.fallback)(error);
      if (error.retryAfter) reply.header('retry-after', String(error.retryAfter));
      return sendReply(reply, shape);
    }
    // A store fault that reached here unclassified (from a path the guarded driver does not see)
    // is still a 503, never a 500.
    const unavailable = error instanceof DependencyUnavailable ? error : unavailability(error) ?? unavailability((error as Error).cause);
    if (unavailable) {
      request.log.warn({ dependency: unavailable.dependency, why: unavailable.message }, `${unavailable.dependency} unavailable: answered 503`);
      reply.header('retry-after', String(unavailable.retryAfter));
      return sendReply(reply, errors.unavailable());
    }
    const bad = toBadRequest(error);
    if (bad) return sendReply(reply, errors.badRequest(bad));
    request.log.error({ err: error }, 'unhandled error');
    return sendReply(reply, errors.internal());
  });
}
