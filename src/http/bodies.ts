// Request bodies: strict UTF-8, then JSON or a form whatever the content type says, and the
// schema of the string fields the APIs' bodies carry.
import querystring from 'node:querystring';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badInput } from './dialect-errors.ts';

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

/** JSON schema for a body of required, non-empty string fields. */
export function stringFields(required: string[], optional: string[] = []) {
  const properties: Record<string, object> = {};
  for (const name of [...required, ...optional]) properties[name] = { type: 'string', minLength: 1, maxLength: 4096 };
  return { type: 'object', required, properties } as const;
}
