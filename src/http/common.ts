// What every dialect shares: body parsing, reading credentials from headers, and one
// error handler per dialect that turns any failure into that dialect's own shape.
import querystring from 'node:querystring';
import { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, DependencyUnavailable, type AuthErrorCode } from '../core/errors.ts';
import type { RequestContext } from '../core/context.ts';
import type { Guard } from '../core/guard.ts';
import { safeEqual, sha256 } from '../core/secrets.ts';
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

/** A body or field the server refuses before any route sees it; answered as a 400 in the dialect's shape. */
function badInput(message: string, field?: string): FastifyError {
  const error = new Error(message) as FastifyError;
  error.statusCode = 400;
  if (field !== undefined) {
    error.validation = [{ keyword: 'controlCharacter', instancePath: `/${field}`, schemaPath: '', params: {}, message }];
  }
  return error;
}

// Text must be well-formed UTF-8: a decoder that replaced bad bytes with U+FFFD would let two
// different byte strings become one name.
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(body: Buffer): string {
  try {
    return utf8.decode(body);
  } catch {
    throw badInput('Request body is not valid UTF-8.');
  }
}

/** A form body as plain string fields; a repeated field keeps its first value; escapes must decode to UTF-8. */
function parseForm(body: string): Record<string, string> {
  let malformed = false;
  const decode = (value: string) => {
    try {
      // A `%` that starts no escape stays literal, as before; escapes must spell UTF-8.
      return decodeURIComponent(value.replace(/%(?![0-9a-fA-F]{2})/g, '%25'));
    } catch {
      malformed = true;
      return '';
    }
  };
  const form = querystring.parse(body, '&', '=', { decodeURIComponent: decode });
  if (malformed) throw badInput('Request body is not valid UTF-8.');
  return Object.fromEntries(Object.entries(form).map(([k, v]) => [k, (Array.isArray(v) ? v[0] : v) ?? '']));
}

type Done = (err: Error | null, body?: unknown) => void;

// Bodies are read as UTF-8 text (strictly), then as JSON when they look like JSON, whatever
// their content type says: curl's -d sends JSON as application/x-www-form-urlencoded (the Ziik
// docs do), and clients send it as text/plain. Any other body is a form. JSON goes through
// fastify's own parser, with its prototype-poisoning guard. An empty body is an empty object,
// so `content-type: application/json` with no body works on routes that need none.
export function registerBodyParsers(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  const read = (strictJson: boolean) => (request: FastifyRequest, raw: Buffer, done: Done) => {
    let body: string;
    try {
      body = decodeUtf8(raw);
      const trimmed = body.trim();
      if (trimmed === '') return done(null, {});
      if (strictJson || trimmed.startsWith('{') || trimmed.startsWith('[')) return json(request, trimmed, done);
      return done(null, parseForm(body));
    } catch (error) {
      return done(error as Error);
    }
  };
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, read(true));
  app.addContentTypeParser(['application/x-www-form-urlencoded', 'text/plain'], { parseAs: 'buffer' }, read(false));
  app.addContentTypeParser('*', { parseAs: 'buffer' }, read(false));
}

// C0 and C1 controls, DEL, and lone surrogates (\p{Cs} in a u-mode pattern matches only
// unpaired ones): never part of a name, an address, a password or a token, and PostgreSQL
// refuses NUL outright.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;

/** Whether a string is well-formed text without control characters. */
export function isCleanText(value: string): boolean {
  return !CONTROL.test(value);
}

/** A field name an error message may repeat. */
const NAMEABLE = /^[A-Za-z0-9_.-]{1,64}$/;

/** The first field (top-level name) holding a control character or a lone surrogate, at any depth. */
function taintedField(value: unknown, field?: string, depth = 0): string | undefined {
  if (typeof value === 'string') return isCleanText(value) ? undefined : (field ?? '');
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const name = field ?? key;
    if (!isCleanText(key)) return name;
    const found = taintedField(inner, name, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Refuses control characters in every field of every route (body, path and query), before
 * any route or the store sees them, as a 400 in the route's dialect shape.
 */
export function registerInputChecks(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    // A streamed body (the admin import's JSON Lines) is the request stream itself, checked line by
    // line as it is read: walking it here went through the socket, the server and every other
    // connection, 32 levels deep, and kept the event loop busy for minutes.
    const body = request.body instanceof Readable ? undefined : request.body;
    const parts: [string, unknown][] = [['path', request.params], ['query string', request.query], ['body', body]];
    for (const [where, part] of parts) {
      const field = taintedField(part);
      if (field === undefined) continue;
      // A field is named only when its name is a plain word (the route's own fields are); a name
      // that is itself hostile (a control character, a long string) is neither echoed nor a key.
      if (NAMEABLE.test(field)) throw badInput(`${field} contains a control character.`, field);
      throw badInput(`The ${where} contains a control character.`);
    }
  });
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

/** Each dialect's errors by the prefix of its scope (the same for every app: they are constants). */
const dialectsByPrefix = new Map<string, DialectErrors>();

/**
 * fastify's `frameworkErrors`: a URL whose escapes are not UTF-8, or a path parameter longer than
 * `maxParamLength`, is refused before any route or scope is chosen; answer it in the dialect its
 * prefix names (the resource routes' at the root), not in fastify's own shape.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const path = request.url.split('?')[0];
  let best: [string, DialectErrors] | undefined;
  for (const [prefix, errors] of dialectsByPrefix) {
    const within = prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
    if (within && (!best || prefix.length > best[0].length)) best = [prefix, errors];
  }
  const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
  const message = status === 414 ? 'A part of the URL is too long.' : 'The URL is not valid.';
  if (!best) return reply.code(status).send({ error: 'invalid_request', error_description: message });
  return sendReply(reply, best[1].badRequest({ status, message, fields: {} }));
}

/** Installs a dialect's error and not-found handlers on its own scope. */
export function useDialectErrors(scope: FastifyInstance, errors: DialectErrors): void {
  useDialectErrorHandler(scope, errors);
  scope.setNotFoundHandler((_request, reply) => sendReply(reply, errors.notFound()));
}

/** Only the error handler (the root's not-found handler is the resource routes' own). */
export function useDialectErrorHandler(scope: FastifyInstance, errors: DialectErrors): void {
  dialectsByPrefix.set(scope.prefix, errors);
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

/** The scheme of the Authorization header, lowercase (`bearer`, `token`…), if any. */
export function schemeOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === 'string' ? /^\s*(\S+)/.exec(header)?.[1]?.toLowerCase() : undefined;
}

/** The token after `Bearer ` (or another scheme) in Authorization, if any. */
export function credentialsFrom(request: FastifyRequest, schemes: string[]): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match) return undefined;
  return schemes.some((s) => s.toLowerCase() === match[1].toLowerCase()) ? match[2] : undefined;
}

export type BearerCheck = { ok: true } | { ok: false; /** Seconds, when the client IP is throttled. */ retryAfter?: number };

/**
 * Whether the request carries `Authorization: Bearer <secret>` (an operator's token). Compared as
 * SHA-256 digests, equal in length whatever was sent, so the time taken reveals neither the
 * token nor its length. The right token is always accepted: it is compared before the throttle
 * is even asked, so wrong guesses from a neighbour (the same /64) can never lock its holder out.
 * Only failures are throttled: a client IP (IPv6: its /64) past its wrong guesses gets 429 for
 * every wrong one until the window ends, whatever it sends, with the same body and timing. All a
 * throttled guesser can learn is whether a guess is exactly right, which is what the right token
 * is for, and which a token of 32+ characters (config.ts) makes hopeless to reach by guessing.
 */
export async function checkBearer(request: FastifyRequest, secret: string, guard: Guard): Promise<BearerCheck> {
  const given = credentialsFrom(request, ['Bearer']);
  if (given !== undefined && safeEqual(sha256(given), sha256(secret))) return { ok: true };
  const wait = await guard.operatorTokenWait(request.ip);
  if (wait > 0) return { ok: false, retryAfter: wait };
  if (given === undefined) return { ok: false };
  await guard.operatorTokenFailed(request.ip);
  return { ok: false };
}

export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  // Header bytes above 0x7f arrive as Latin-1, C1 controls included: keep only clean text.
  return { ip: request.ip, userAgent: typeof agent === 'string' && isCleanText(agent) ? agent : undefined };
}

/** JSON schema for a body of required, non-empty string fields. */
export function stringFields(required: string[], optional: string[] = []) {
  const properties: Record<string, object> = {};
  for (const name of [...required, ...optional]) properties[name] = { type: 'string', minLength: 1, maxLength: 4096 };
  return { type: 'object', required, properties } as const;
}
