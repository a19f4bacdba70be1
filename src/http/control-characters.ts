// Control characters are refused everywhere: in every field of every route, before any route or
// the store sees them.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { badInput } from './dialect-errors.ts';

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
