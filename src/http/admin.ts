// The admin API, /admin/*: user management behind `Authorization: Bearer $LATCHKEY_ADMIN_TOKEN`.
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Core } from '../core/index.ts';
import type { AuthError } from '../core/errors.ts';
import { publicUser } from '../core/users.ts';
import { MAX_USERS_PAGE, USER_ADDRESSINGS, userIdOf, type AddressedBy } from '../core/user-addressing.ts';
import type { DialectErrors } from './dialect-errors.ts';
import { checkBearer } from './operator-token.ts';
import { BodyTooLarge, capBytes, jsonLines } from '../transfer/records.ts';
import type { ImportReject } from '../core/user-transfer.ts';

const error = (status: number, code: string, message: string) => ({ status, body: { error: code, message } });
const as = (status: number) => (e: AuthError) => error(status, e.code, e.message);

export const adminErrors: DialectErrors = {
  auth: {
    validation: (e) => ({ status: 400, body: { error: e.code, message: e.message, fields: e.field ? { [e.field]: e.message } : {} } }),
    password_policy: as(400),
    user_exists: as(409),
    user_not_found: as(404),
    key_not_found: as(404),
    ids_exhausted: as(409),
    externally_managed: as(409),
  },
  badRequest: (problem) => ({ status: problem.status, body: { error: 'validation', message: problem.message, fields: problem.fields } }),
  notFound: () => error(404, 'not_found', 'Not Found.'),
  internal: () => error(500, 'internal', 'Internal Server Error.'),
  unavailable: () => error(503, 'unavailable', 'The store is unavailable; try again later.'),
  fallback: as(400),
};

/** Rejected rows listed in an import's answer; the counts cover all of them. */
const MAX_LISTED_REJECTS = 1000;
const JSON_LINES = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines'];

/**
 * Where each way of naming a user (core/user-addressing.ts) is spelled: /admin/users/<username>/…,
 * /admin/user-ids/<id>/… and /admin/legacy-ids/<legacy id>/… (the id an imported user had in the
 * old system, src/core/legacy-ids.ts).
 */
const PREFIXES: Record<AddressedBy, string> = { username: '/users/:user', id: '/user-ids/:user', legacyId: '/legacy-ids/:user' };

const ADDRESSINGS = Object.entries(USER_ADDRESSINGS).map(([by, { schema, ref }]) => ({
  prefix: PREFIXES[by as AddressedBy],
  params: { type: 'object', required: ['user'], properties: { user: schema } },
  ref: (param: string) => ref(param, 'user'),
}));

/** A pattern for the decimal numbers from 1 to `max`, no leading zero (a query string is text, not a number). */
function upTo(max: number): string {
  const digits = String(max);
  const shorter = digits.length > 1 ? [`[1-9][0-9]{0,${digits.length - 2}}`] : [];
  const below = [...digits].flatMap((digit, i) => {
    const low = i === 0 ? 1 : 0;
    if (Number(digit) - 1 < low) return [];
    const rest = digits.length - i - 1;
    return [`${digits.slice(0, i)}[${low}-${Number(digit) - 1}]${rest ? `[0-9]{${rest}}` : ''}`];
  });
  return `^(?:${[...shorter, ...below, digits].join('|')})$`;
}

export async function adminRoutes(
  app: FastifyInstance,
  { core, adminToken, importMaxBytes }: { core: Core; adminToken: string; importMaxBytes: number },
): Promise<void> {
  app.addHook('onRequest', async (request, reply) => {
    const check = await checkBearer(request, adminToken, core.guard);
    if (check.ok) return;
    if (check.retryAfter) {
      return reply
        .code(429)
        .header('retry-after', String(check.retryAfter))
        .send(error(429, 'rate_limited', 'Too many wrong admin tokens from this address; try again later.').body);
    }
    return reply.code(401).header('www-authenticate', 'Bearer realm="latchkey-admin"').send(error(401, 'unauthorized', 'Admin token required.').body);
  });

  app.post<{ Body: { username: string; email: string; password?: string; temporary_password?: string; external?: boolean } }>(
    '/users',
    {
      schema: {
        body: {
          type: 'object',
          required: ['username', 'email'],
          additionalProperties: false,
          properties: {
            username: { type: 'string', minLength: 1, maxLength: 128 },
            email: { type: 'string', minLength: 3, maxLength: 254 },
            password: { type: 'string', minLength: 1, maxLength: 4096 },
            temporary_password: { type: 'string', minLength: 1, maxLength: 4096 },
            external: { type: 'boolean' },
          },
        },
      },
    },
    async (request, reply) => {
      const { username, email, password, temporary_password, external } = request.body;
      const user = await core.users.create({ username, email, password, temporaryPassword: temporary_password, external });
      return reply.code(201).send(publicUser(user));
    },
  );

  // The import body is streamed to the importer as it arrives, whatever its size: only this
  // route, behind the admin token, reads JSON Lines.
  app.addContentTypeParser(JSON_LINES, (_request, payload, done) => done(null, payload));

  app.post<{ Querystring: { update?: string } }>(
    '/users/import',
    { schema: { querystring: { type: 'object', properties: { update: { type: 'string', enum: ['true', 'false'] } } } } },
    async (request, reply) => {
      if (!JSON_LINES.includes(String(request.headers['content-type']).split(';')[0].trim().toLowerCase())) {
        return reply.code(415).send(error(415, 'unsupported_media_type', 'Send JSON Lines as application/x-ndjson.').body);
      }
      const tooLarge = () =>
        error(413, 'body_too_large', `An import body may be at most ${importMaxBytes} bytes (LATCHKEY_IMPORT_MAX_BYTES); split the file.`);
      // Refused before a row is read when the length is announced; else counted as it streams.
      if (Number(request.headers['content-length']) > importMaxBytes) return reply.code(413).header('connection', 'close').send(tooLarge().body);
      const rejects: ImportReject[] = [];
      try {
        const counts = await core.transfer.importUsers(jsonLines(capBytes((request.body as Readable).iterator({ destroyOnReturn: false }), importMaxBytes)), {
          update: request.query.update === 'true',
          onReject: (reject) => void (rejects.length < MAX_LISTED_REJECTS && rejects.push(reject)),
        });
        return { ...counts, rejects };
      } catch (failure) {
        if (!(failure instanceof BodyTooLarge)) throw failure;
        const { body } = tooLarge();
        const message = `${body.message} It stopped in line ${failure.line}: the rows above it are written (importing again is idempotent).`;
        // The rest of the body is not read: close the connection once the answer is out.
        return reply.code(413).header('connection', 'close').send({ ...body, message });
      }
    },
  );

  app.get<{ Querystring: { limit?: string; after?: string } }>(
    '/users',
    {
      schema: {
        querystring: {
          type: 'object',
          // 1 to MAX_USERS_PAGE, as `latchkey users list --limit`: a larger page is refused, not silently cut.
          properties: { limit: { type: 'string', pattern: upTo(MAX_USERS_PAGE) }, after: { type: 'string', pattern: '^(?:0|[1-9][0-9]{0,15})$' } },
        },
      },
    },
    async (request) => {
      const { limit, after } = request.query;
      const users = await core.users.list({ limit: limit ? Number(limit) : undefined, afterId: after && after !== '0' ? userIdOf(after, 'after') : undefined });
      return { users: users.map(publicUser), next_after: users.length ? users[users.length - 1].id : null };
    },
  );

  for (const { prefix, params, ref } of ADDRESSINGS) {
    type Params = { Params: { user: string } };
    const user = (request: { params: { user: string } }) => ref(request.params.user);

    app.get<Params>(prefix, { schema: { params } }, async (request) => core.users.view(await core.users.find(user(request))));

    app.post<Params>(`${prefix}/unlock`, { schema: { params } }, async (request) => core.users.view(await core.users.unlock(user(request))));

    app.delete<Params>(prefix, { schema: { params } }, async (request, reply) => {
      await core.users.remove(user(request));
      return reply.code(204).send();
    });

    app.post<Params>(`${prefix}/disable`, { schema: { params } }, async (request) => publicUser(await core.users.disable(user(request))));

    app.post<Params>(`${prefix}/enable`, { schema: { params } }, async (request) => publicUser(await core.users.enable(user(request))));

    app.post<Params & { Body: { password: string; temporary?: boolean } }>(
      `${prefix}/password`,
      {
        schema: {
          params,
          body: {
            type: 'object',
            required: ['password'],
            properties: { password: { type: 'string', minLength: 1, maxLength: 4096 }, temporary: { type: 'boolean' } },
          },
        },
      },
      async (request) =>
        publicUser(await core.users.setPassword(user(request), request.body.password, { temporary: request.body.temporary })),
    );

    app.get<Params>(`${prefix}/sessions`, { schema: { params } }, async (request) => ({
      sessions: await core.users.sessions(user(request)),
    }));

    app.get<Params>(`${prefix}/events`, { schema: { params } }, async (request) => ({
      events: await core.users.events(user(request)),
    }));

    app.post<Params>(`${prefix}/sign-out`, { schema: { params } }, async (request) => ({
      revoked_sessions: await core.users.signOutEverywhere(user(request)),
    }));
  }

  app.get('/keys', async () => ({ keys: core.keys.list() }));

  // Withdraws a signing key now (a compromise): tokens it signed stop verifying at once.
  app.post<{ Params: { kid: string } }>(
    '/keys/:kid/retire',
    { schema: { params: { type: 'object', required: ['kid'], properties: { kid: { type: 'string', minLength: 1, maxLength: 128 } } } } },
    async (request) => {
      const { kid, signingKid } = await core.keys.withdraw(request.params.kid);
      request.log.warn({ kid }, 'signing key withdrawn');
      return { kid, signing_kid: signingKid };
    },
  );
}

/** In place of the admin API while it is off: every /admin path says which setting turns it on. */
export async function adminDisabledRoutes(app: FastifyInstance): Promise<void> {
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send(error(404, 'admin_api_disabled', 'The admin API is off: set LATCHKEY_ADMIN_TOKEN to turn it on.').body),
  );
}
