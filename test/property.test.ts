// Property: hostile text (astral, combining, RTL, full-width, control characters, lone
// surrogates, very long strings) and wrong JSON types, thrown at every route of both stores
// as JSON bodies, form bodies, path params, query strings and Authorization headers, never get
// a 5xx, and every 4xx is in the route's own error shape. test/fuzz.test.ts fuzzes the dialects'
// bodies with plain generated text; this extends that to path params, query strings, the admin
// API behind a valid token, the resource routes and every route in the README's tables.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ENGINES, ADMIN_TOKEN, startServer, call, createUser, type TestServer, type Reply } from './helpers.ts';
import { htmlPage, isJson, isObject, keysWithin, oauthShape, roypiShape, wikimediaShape, ziikShape, type Shape } from './shapes.ts';

/** The admin API: `{error, message}`, validation adding `fields: {name: why}`. */
const adminShape: Shape = (b, r) =>
  isJson(r) &&
  isObject(b) &&
  keysWithin(b, ['error', 'message', 'fields']) &&
  typeof b.error === 'string' &&
  b.error.length > 0 &&
  typeof b.message === 'string' &&
  (b.fields === undefined || (isObject(b.fields) && Object.values(b.fields).every((m) => typeof m === 'string')));
/**
 * Protected resource routes refuse a token in the Roypi scheme (`Token …`) in Roypi's shape, any
 * other in RFC 6750's; a malformed request (a bad query string) is the route's own `invalid_request`.
 */
const resourceShape =
  (auth: string | undefined): Shape =>
  (b, r) =>
    oauthShape(b, r) || (/^token(\s|$)/i.test(auth?.trim() ?? '') && roypiShape(b, r));

// ---- Hostile text -------------------------------------------------------------------------

const SPECIMENS = [
  '\u{1D573}\u{1F600}\u{10FFFF}', // astral: math letter, emoji, the last code point
  'e\u0301\u0308\u0336', // combining marks
  '\u202Eevil\u202C\u05D0\u0627\u200F', // RTL override, Hebrew, Arabic, RLM
  'ＡＤＭＩＮ＠ｅｘａｍｐｌｅ．ｃｏｍ', // full-width
  '\u0000', // NUL
  '\u0001\u001B\u001F\t\r\n', // C0
  '\u007F', // DEL
  '\u0080\u0085\u009F', // C1
  '\uD800', // lone high surrogate
  '\uDFFF', // lone low surrogate
  '\uDC00\uD800', // reversed pair
  '\u2028\u2029\uFEFF\u200B', // separators, BOM, zero width
  'ß\u0130ﬁ', // case-folding oddities
  '%00%ff%', // percent signs that decode badly
  '../..\\', // traversal
  "' or 1=1 --", // SQL
  'fuzz', // the user that exists
  'fuzz@example.com',
];

const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPECIMENS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
);
/** Text of any kind: short mixes of the above, or very long. */
const hostileText = fc.oneof(
  { weight: 6, arbitrary: fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...SPECIMENS), fc.integer({ min: 300, max: 9000 })).map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n)) },
);
/**
 * Text for a URL or a header: long, but short enough that the request's head stays under
 * Node's 16 KiB limit (beyond it Node answers 431 before any of our code runs).
 */
const headText = fc.oneof(
  { weight: 6, arbitrary: fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...SPECIMENS), fc.integer({ min: 100, max: 500 })).map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n)) },
);
/** A JSON value of any type where a string is expected. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileText },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(1e308), fc.constant(-0)) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false) },
  { weight: 1, arbitrary: fc.array(fc.oneof(hostileText, fc.integer()), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileText, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }).map((o) => ({ nested: o })) },
);

/** UTF-8 percent-encoding of every code unit; a lone surrogate becomes U+FFFD as it would on any wire. */
const percent = (text: string) =>
  [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
/** A path segment or query part: well-encoded text, or raw bytes that are not UTF-8 at all. */
const hostileSegment = fc.oneof(
  { weight: 4, arbitrary: headText.filter((s) => s.length > 0).map(percent) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%E2%82', '..', '.', '%2e%2e', '%2F', ';', '%3B') },
);
const queryString = fc
  .array(fc.tuple(fc.oneof(hostileSegment, fc.constantFrom('token', 'limit', 'after', 'update', 'username', '__proto__')), hostileSegment), { maxLength: 2 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

/**
 * An Authorization header: hostile text sent as its raw UTF-8 bytes (a header is bytes), after one
 * of the schemes or none. The HTTP client refuses C0 controls and DEL in a header (as Node's parser
 * would), and surrounding whitespace, so those go.
 */
const headerBytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1').replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '').replace(/^[\s\x85]+|[\s\x85]+$/g, '');
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.tuple(fc.constantFrom('Bearer ', 'Token ', 'bearer ', 'Basic ', 'JWT ', ''), headText).map(([scheme, text]) => headerBytes(scheme + text)),
);

// ---- Routes -------------------------------------------------------------------------------

interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  shape: Shape;
  fields: string[];
}

const DIALECT_ROUTES: Route[] = [
  ...[
    ['/v1/login', ['username', 'password']],
    ['/v1/token-refresh', ['username', 'refresh_token']],
    ['/v1/token-revoke', ['refresh_token']],
    ['/v1/forgot-password', ['username']],
    ['/v1/forgot-password-confirm', ['username', 'password', 'confirmation_code']],
    ['/v1/change-password', ['access_token', 'previous_password', 'proposed_password']],
    ['/v1/new-password-required', ['session', 'username', 'new_password']],
  ].map(([path, fields]) => ({ method: 'POST' as const, path: path as string, fields: fields as string[], shape: wikimediaShape })),
  ...[
    ['/auth/access_token/', ['username', 'password']],
    ['/auth/refresh_token/', ['token']],
    ['/auth/verify_token/', ['token']],
  ].map(([path, fields]) => ({ method: 'POST' as const, path: path as string, fields: fields as string[], shape: roypiShape })),
  ...[
    ['/api/authenticate', ['username', 'password']],
    ['/api/renew', []],
    ['/api/password/request', ['email']],
    ['/api/password/reset', ['token', 'email', 'password', 'password_confirm']],
  ].map(([path, fields]) => ({ method: 'POST' as const, path: path as string, fields: fields as string[], shape: ziikShape })),
  { method: 'GET', path: '/api/renew', fields: [], shape: ziikShape },
  { method: 'POST', path: '/reset-password', fields: ['token', 'password', 'password_confirm'], shape: htmlPage },
  { method: 'GET', path: '/reset-password', fields: [], shape: htmlPage },
];

/** Admin routes naming a user; `:user` is filled with a hostile path param. */
const ADMIN_USER_ROUTES: { method: Route['method']; suffix: string; fields: string[] }[] = [
  { method: 'GET', suffix: '', fields: [] },
  { method: 'DELETE', suffix: '', fields: [] },
  { method: 'POST', suffix: '/unlock', fields: [] },
  { method: 'POST', suffix: '/disable', fields: [] },
  { method: 'POST', suffix: '/enable', fields: [] },
  { method: 'POST', suffix: '/password', fields: ['password', 'temporary'] },
  { method: 'GET', suffix: '/sessions', fields: [] },
  { method: 'GET', suffix: '/events', fields: [] },
  { method: 'POST', suffix: '/sign-out', fields: [] },
];

const INTROSPECTION_TOKEN = 'property-introspection-token-0123456789';
const HIGH = '1000000';

/** A body of the route's fields holding hostile values, as JSON or as a form; or junk of any kind. */
const bodyFor = (fields: string[]) =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .dictionary(fc.constantFrom(...fields, 'extra', '__proto__', 'constructor'), hostileValue, { maxKeys: fields.length + 1 })
        .map((o) => ({ type: 'application/json', body: JSON.stringify(o) })),
    },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.tuple(fc.constantFrom(...fields, 'extra'), hostileText), { maxLength: fields.length + 1 })
        .map((pairs) => ({ type: 'application/x-www-form-urlencoded', body: pairs.map(([k, v]) => `${k}=${percent(v)}`).join('&') })),
    },
    { weight: 1, arbitrary: hostileValue.map((v) => ({ type: 'application/json', body: JSON.stringify(v) ?? 'null' })) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

async function send(
  server: TestServer,
  method: string,
  path: string,
  body: { type: string; body: string } | undefined,
  headers: Record<string, string | undefined> = {},
): Promise<Reply> {
  const sent: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) sent[k] = v;
  if (body) sent['content-type'] = body.type;
  return call(`${server.url}${path}`, { method, body: method === 'GET' ? undefined : body?.body, headers: sent });
}

function check(reply: Reply, shape: Shape, what: string) {
  assert.ok(reply.status < 500, `${reply.status} for ${what}: ${reply.text.slice(0, 500)}`);
  if (reply.status >= 400) assert.ok(shape(reply.body, reply), `shape of ${reply.status} for ${what}: ${reply.text.slice(0, 500)}`);
}

const RUNS = 30;

for (const engine of ENGINES) {
  describe(`hostile input at every route on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine, {
        LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION_TOKEN,
        LATCHKEY_IP_RATE_LIMIT: HIGH,
        LATCHKEY_RESET_REQUESTS_PER_IP: HIGH,
        LATCHKEY_CODE_ATTEMPTS_PER_IP: HIGH,
        LATCHKEY_LOCKOUT_THRESHOLD: HIGH,
        LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: HIGH,
      });
      await createUser(server, { username: 'fuzz', email: 'fuzz@example.com', password: 'fuzz-password' });
    });
    after(() => server.close());

    it('the three dialects and the reset page: hostile bodies, query strings and Authorization', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...DIALECT_ROUTES).chain((route) => fc.tuple(fc.constant(route), bodyFor(route.fields.length ? route.fields : ['token']), queryString, authorization)),
          async ([route, body, query, auth]) => {
            const reply = await send(server, route.method, route.path + query, body, { authorization: auth });
            check(reply, route.shape, `${route.method} ${route.path}${query.slice(0, 200)} ${body?.body.slice(0, 200)} auth=${auth?.slice(0, 100)}`);
          },
        ),
        { numRuns: RUNS * 3 },
      );
    });

    it('GET /reset-password?token=<hostile> answers a page, never a 5xx', async () => {
      await fc.assert(
        fc.asyncProperty(hostileSegment, async (token) => {
          const reply = await send(server, 'GET', `/reset-password?token=${token}`, undefined);
          check(reply, htmlPage, token.slice(0, 300));
        }),
        { numRuns: RUNS },
      );
    });

    it('unknown paths under each prefix answer 404 in that prefix\'s shape', async () => {
      const prefixes: [string, Shape][] = [
        ['/v1/', wikimediaShape],
        ['/auth/', roypiShape],
        ['/api/', ziikShape],
        ['/admin/', adminShape],
        ['/', oauthShape],
        ['/.well-known/', oauthShape],
      ];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...prefixes), hostileSegment, fc.constantFrom('GET', 'POST', 'DELETE'), async ([prefix, shape], segment, method) => {
          // fetch resolves dot segments itself: such a path never reaches the prefix.
          fc.pre(!/^(?:\.|%2e)+$/i.test(segment));
          const reply = await send(server, method, prefix + segment, undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
          check(reply, shape, `${method} ${prefix}${segment.slice(0, 300)}`);
        }),
        { numRuns: RUNS },
      );
    });

    it('admin routes naming a user, with a valid token: hostile path params, query strings and bodies', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...ADMIN_USER_ROUTES),
          fc.constantFrom('/admin/users/', '/admin/user-ids/'),
          fc.oneof(hostileSegment, fc.constantFrom('fuzz', '1', '0', '-1', '1e3', '999999999999999', '9999999999999999999', '00001')),
          queryString,
          bodyFor(['password', 'temporary']),
          async (route, prefix, user, query, body) => {
            const path = `${prefix}${user}${route.suffix}${query}`;
            const reply = await send(server, route.method, path, route.fields.length ? body : undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
            check(reply, adminShape, `${route.method} ${path.slice(0, 300)} ${body?.body.slice(0, 200)}`);
          },
        ),
        { numRuns: RUNS * 2 },
      );
      // The fuzzed calls may have disabled, deleted or renamed nothing else: put the user back for the later properties.
      await call(`${server.url}/admin/users/fuzz/enable`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    });

    it('admin collection routes, with a valid token: hostile bodies, query strings and key ids', async () => {
      const routes: { method: Route['method']; path: (s: string) => string; fields: string[]; type?: string }[] = [
        { method: 'POST', path: () => '/admin/users', fields: ['username', 'email', 'password', 'temporary_password', 'external'] },
        { method: 'GET', path: () => '/admin/users', fields: [] },
        { method: 'GET', path: () => '/admin/keys', fields: [] },
        { method: 'POST', path: (kid) => `/admin/keys/${kid}/retire`, fields: [] },
        // Streamed JSON Lines, read line by line with a bounded line (test/import-limits.test.ts).
        { method: 'POST', path: () => '/admin/users/import', fields: ['id', 'username', 'email', 'password_hash', 'password', 'status', 'created_at'], type: 'application/x-ndjson' },
      ];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), hostileSegment, queryString, async (route, segment, query) => {
          const bodies = route.fields.length ? await fc.sample(bodyFor(route.fields), { numRuns: 1 }) : [undefined];
          let body = bodies[0];
          if (route.type && body) {
            // JSON Lines: a few hostile records, one a line (a form body becomes a junk line).
            const lines = fc.sample(bodyFor(route.fields), { numRuns: 3 }).map((b) => b?.body ?? '');
            body = { type: route.type, body: lines.join('\n') };
          }
          const path = route.path(segment) + query;
          const reply = await send(server, route.method, path, body, { authorization: `Bearer ${ADMIN_TOKEN}` });
          check(reply, adminShape, `${route.method} ${path.slice(0, 300)} ${body?.body.slice(0, 300)}`);
        }),
        { numRuns: RUNS },
      );
    });

    it('GET /admin/users?limit&after with hostile values', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(hostileSegment, fc.integer().map(String)), fc.oneof(hostileSegment, fc.bigInt().map(String)), async (limit, afterId) => {
          const reply = await send(server, 'GET', `/admin/users?limit=${limit}&after=${afterId}`, undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
          check(reply, adminShape, `limit=${limit.slice(0, 100)} after=${afterId.slice(0, 100)}`);
        }),
        { numRuns: RUNS },
      );
    });

    it('resource routes: hostile Authorization, query strings and introspection bodies', async () => {
      const routes: { method: Route['method']; path: string; shape: (auth: string | undefined) => Shape; auth?: string }[] = [
        { method: 'GET', path: '/userinfo', shape: resourceShape },
        { method: 'GET', path: '/forward-auth', shape: resourceShape },
        { method: 'GET', path: '/auth/user/', shape: () => roypiShape },
        { method: 'POST', path: '/introspect', shape: () => oauthShape, auth: `Bearer ${INTROSPECTION_TOKEN}` },
        { method: 'POST', path: '/introspect', shape: () => oauthShape },
        { method: 'GET', path: '/.well-known/jwks.json', shape: () => oauthShape },
        { method: 'GET', path: '/.well-known/openid-configuration', shape: () => oauthShape },
        // Routes at the root, outside every API: the same shape (a query key may be a bare control character).
        ...['/openapi.json', '/health', '/healthz', '/ready', '/readyz', '/metrics', '/'].map((path) => ({ method: 'GET' as const, path, shape: () => oauthShape })),
      ];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), authorization, queryString, bodyFor(['token', 'token_type_hint']), async (route, auth, query, body) => {
          const sentAuth = route.auth ?? auth;
          const reply = await send(server, route.method, route.path + query, body, { authorization: sentAuth });
          check(reply, route.shape(sentAuth), `${route.method} ${route.path}${query.slice(0, 200)} auth=${sentAuth?.slice(0, 100)} ${body?.body.slice(0, 200)}`);
        }),
        { numRuns: RUNS * 2 },
      );
    });
  });
}

// Every route answers a control character in its query string or path as a 400 in its shape,
// naming the field when its name is a plain word and never repeating a hostile name.
for (const engine of ENGINES) {
  describe(`control characters in the URL of every route, on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(() => server.close());

    it('routes outside the APIs: 400 {error, error_description} naming the field sensibly', async () => {
      for (const path of ['/openapi.json', '/health', '/healthz', '/ready', '/readyz', '/metrics', '/', '/.well-known/jwks.json', '/.well-known/openid-configuration', '/userinfo']) {
        const bareKey = await call(`${server.url}${path}?%01=1`);
        assert.equal(bareKey.status, 400, `${path}: ${bareKey.text}`);
        assert.deepEqual(bareKey.body, { error: 'invalid_request', error_description: 'The query string contains a control character.' }, path);
        const value = await call(`${server.url}${path}?token=a%00b`);
        assert.equal(value.status, 400, `${path}: ${value.text}`);
        assert.deepEqual(value.body, { error: 'invalid_request', error_description: 'token contains a control character' }, path);
      }
    });

    it('the APIs: a bare control-character query key is named by where it is, in each API\'s shape', async () => {
      const cases: [string, string, Shape][] = [
        ['POST', '/v1/login', wikimediaShape],
        ['POST', '/auth/verify_token/', roypiShape],
        ['GET', '/api/renew', ziikShape],
        ['GET', '/admin/users', adminShape],
      ];
      for (const [method, path, shape] of cases) {
        const reply = await call(`${server.url}${path}?%1B=1`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        assert.ok(reply.status >= 400 && reply.status < 500, `${path}: ${reply.status} ${reply.text}`);
        assert.ok(shape(reply.body, reply), `${path}: ${reply.text}`);
        assert.doesNotMatch(reply.text, /\\u001b|\x1b/i, `${path} repeats the hostile name: ${reply.text}`);
        assert.match(reply.text, /query string contains a control character/, path);
      }
      const param = await call(`${server.url}/admin/keys/%00/retire`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(param.status, 400, param.text);
      assert.deepEqual(param.body.fields, { kid: 'contains a control character' });
    });
  });
}

// Cases the property found, kept as plain examples.
for (const engine of ENGINES) {
  describe(`URLs fastify refuses before routing, on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(() => server.close());
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

    it('a path parameter whose escapes are not UTF-8 gets 400 in the dialect\'s shape', async () => {
      for (const path of ['/admin/keys/%80/retire', '/admin/users/%E2%82', '/admin/user-ids/%ff/events']) {
        const reply = await call(`${server.url}${path}`, { method: path.endsWith('retire') ? 'POST' : 'GET', headers: admin });
        assert.equal(reply.status, 400, `${path}: ${reply.text}`);
        assert.ok(adminShape(reply.body, reply), `${path}: ${reply.text}`);
      }
    });

    it('a long non-ASCII username is reachable by the admin API, and an overlong one is refused in its shape', async () => {
      const username = 'и'.repeat(120);
      await createUser(server, { username, email: 'long@example.com', password: 'long-password' });
      const found = await call(`${server.url}/admin/users/${encodeURIComponent(username)}`, { headers: admin });
      assert.equal(found.status, 200, found.text);
      assert.equal(found.body.username, username);
      const overlong = await call(`${server.url}/admin/users/${'%D0%B8'.repeat(1000)}`, { headers: admin });
      assert.ok(overlong.status === 400 || overlong.status === 414, overlong.text);
      assert.ok(adminShape(overlong.body, overlong), overlong.text);
    });
  });
}
