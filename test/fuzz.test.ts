// Malformed bodies, headers and tokens at every endpoint: always an answer below 500,
// and every 4xx in the dialect's own error shape.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ENGINES, startServer, call, post, createUser, type TestServer, type Reply } from './helpers.ts';
import { htmlPage, oauthShape, roypiShape, wikimediaShape, ziikShape, type Shape } from './shapes.ts';

const ENDPOINTS: { path: string; method: 'POST' | 'GET'; shape: Shape; fields: string[] }[] = [
  { path: '/v1/login', method: 'POST', shape: wikimediaShape, fields: ['username', 'password'] },
  { path: '/v1/token-refresh', method: 'POST', shape: wikimediaShape, fields: ['username', 'refresh_token'] },
  { path: '/v1/token-revoke', method: 'POST', shape: wikimediaShape, fields: ['refresh_token'] },
  { path: '/v1/forgot-password', method: 'POST', shape: wikimediaShape, fields: ['username'] },
  { path: '/v1/forgot-password-confirm', method: 'POST', shape: wikimediaShape, fields: ['username', 'password', 'confirmation_code'] },
  { path: '/v1/change-password', method: 'POST', shape: wikimediaShape, fields: ['access_token', 'previous_password', 'proposed_password'] },
  { path: '/v1/new-password-required', method: 'POST', shape: wikimediaShape, fields: ['session', 'username', 'new_password'] },
  { path: '/auth/access_token/', method: 'POST', shape: roypiShape, fields: ['username', 'password'] },
  { path: '/auth/refresh_token/', method: 'POST', shape: roypiShape, fields: ['token'] },
  { path: '/auth/verify_token/', method: 'POST', shape: roypiShape, fields: ['token'] },
  { path: '/api/authenticate', method: 'POST', shape: ziikShape, fields: ['username', 'password'] },
  { path: '/api/renew', method: 'POST', shape: ziikShape, fields: ['token'] },
  { path: '/api/password/request', method: 'POST', shape: ziikShape, fields: ['email'] },
  { path: '/api/password/reset', method: 'POST', shape: ziikShape, fields: ['token', 'email', 'password', 'password_confirm'] },
  { path: '/reset-password', method: 'POST', shape: htmlPage, fields: ['token', 'password', 'password_confirm'] },
];

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', 'text/plain', 'application/xml', ''];

/** A body: junk text, any JSON, or the endpoint's own fields holding values of any type. */
const bodyFor = (fields: string[]) =>
  fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.json({ maxDepth: 3 }),
    fc.dictionary(fc.constantFrom(...fields, 'extra'), fc.jsonValue({ maxDepth: 2 })).map((o) => JSON.stringify(o)),
    fc.dictionary(fc.constantFrom(...fields), fc.string({ maxLength: 40 })).map((o) => new URLSearchParams(o).toString()),
  );

const authorization = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 100 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
  fc.tuple(fc.constantFrom('Bearer', 'Token', 'JWT', 'Basic', 'bearer'), fc.stringMatching(/^[A-Za-z0-9._~+\/=-]{0,200}$/)).map(([s, t]) => `${s} ${t}`),
);

describe('the error shapes the fuzzer checks against', () => {
  const reply = (status: number, body: unknown, type = 'application/json; charset=utf-8'): Reply => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return { status, headers: new Headers({ 'content-type': type }), body: typeof body === 'string' ? undefined : body, text };
  };
  const page = '<!doctype html><html><main><div class="alert error" role="alert">This link is not valid.</div></main></html>';
  const own: [string, Shape, Reply][] = [
    ['wikimedia', wikimediaShape, reply(401, { status: 401, message: 'Unauthorized.' })],
    ['roypi detail', roypiShape, reply(400, { detail: 'Request body is not valid JSON.' })],
    ['roypi fields', roypiShape, reply(400, { non_field_errors: ['Unable to log in with provided credentials.'] })],
    ['ziik', ziikShape, reply(422, { message: 'The password field is required.', errors: { password: ['The password field is required.'] } })],
    ['oauth', oauthShape, reply(401, { error: 'invalid_token', error_description: 'The token is not valid.' })],
    ['html', htmlPage, reply(400, page, 'text/html; charset=utf-8')],
  ];
  it('each accepts its own dialect and refuses {}, [], the others and fastify\'s default error', () => {
    const foreign = [
      reply(400, {}),
      reply(400, []),
      reply(400, { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', error: 'Bad Request', message: 'Body is not valid JSON' }),
      reply(400, { detail: [] }),
      reply(422, { message: 'no errors field' }),
      reply(400, page, 'application/json'),
    ];
    for (const [name, shape, example] of own) {
      assert.ok(shape(example.body, example), `${name} accepts its own`);
      for (const other of [...foreign, ...own.filter(([n]) => n.split(' ')[0] !== name.split(' ')[0]).map(([, , r]) => r)]) {
        assert.ok(!shape(other.body, other), `${name} refuses ${other.text}`);
      }
    }
  });
});

for (const engine of ENGINES) {
  describe(`fuzzing every endpoint on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
      await createUser(server, { username: 'fuzz', email: 'fuzz@example.com', password: 'fuzz-password' });
    });
    after(() => server.close());

    for (const endpoint of ENDPOINTS) {
      it(`${endpoint.method} ${endpoint.path} never answers 5xx, and answers 4xx in its shape`, async () => {
        await fc.assert(
          fc.asyncProperty(bodyFor(endpoint.fields), fc.constantFrom(...CONTENT_TYPES), authorization, async (body, type, auth) => {
            const headers: Record<string, string> = {};
            if (type) headers['content-type'] = type;
            if (auth !== undefined) headers.authorization = auth;
            const reply = await call(`${server.url}${endpoint.path}`, { method: endpoint.method, body, headers });
            assert.ok(reply.status < 500, `${reply.status} for ${JSON.stringify(body)} as ${type}: ${reply.text}`);
            if (reply.status >= 400) assert.ok(endpoint.shape(reply.body, reply), `shape of ${reply.status} ${reply.text}`);
          }),
          { numRuns: 40 },
        );
      });
    }

    it('an oversized body gets 413, a wrong method 404, each in its dialect shape', async () => {
      const huge = JSON.stringify({ username: 'x'.repeat(100_000), password: 'y' });
      for (const endpoint of ENDPOINTS) {
        const reply = await call(`${server.url}${endpoint.path}`, { body: huge, headers: { 'content-type': 'application/json' } });
        assert.equal(reply.status, 413, endpoint.path);
        assert.ok(endpoint.shape(reply.body, reply), `${endpoint.path}: ${reply.text}`);
      }
      for (const endpoint of ENDPOINTS.filter((e) => e.method === 'POST' && e.path !== '/api/renew' && e.path !== '/reset-password')) {
        const reply = await call(`${server.url}${endpoint.path}`, { method: 'PUT', json: {} });
        assert.equal(reply.status, 404, endpoint.path);
        assert.ok(endpoint.shape(reply.body, reply), `${endpoint.path}: ${reply.text}`);
      }
    });

    it('GET endpoints that read Authorization answer junk with 401 in their shape', async () => {
      const shapes: Record<string, Shape> = {
        '/userinfo': oauthShape,
        '/forward-auth': oauthShape,
        '/auth/user/': roypiShape,
        '/api/renew': ziikShape,
      };
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...Object.keys(shapes)), authorization, async (path, auth) => {
          const reply = await call(`${server.url}${path}`, { headers: auth === undefined ? {} : { authorization: auth } });
          assert.equal(reply.status, 401, `${path}: ${reply.text}`);
          // The Roypi scheme is answered in Roypi's shape on every protected route.
          const shape = path !== '/api/renew' && /^token(\s|$)/i.test(auth ?? '') ? roypiShape : shapes[path];
          assert.ok(shape(reply.body, reply), `${path}: ${reply.text}`);
          assert.ok(reply.headers.get('www-authenticate'), `${path} names its scheme`);
        }),
        { numRuns: 80 },
      );
    });

    it('a tampered token is never accepted', async () => {
      const token = (await post(`${server.url}/auth/access_token/`, { username: 'fuzz', password: 'fuzz-password' })).body.access_token as string;
      await fc.assert(
        fc.asyncProperty(fc.nat(token.length - 1), fc.constantFrom(...'ABCabc012-_.'), async (at, ch) => {
          fc.pre(token[at] !== ch);
          const tampered = token.slice(0, at) + ch + token.slice(at + 1);
          const reply = await post(`${server.url}/auth/verify_token/`, { token: tampered });
          // Base64url's last character can carry unused bits; a change there may decode to the same bytes.
          const same = Buffer.from(tampered.split('.')[2] ?? '', 'base64url').equals(Buffer.from(token.split('.')[2], 'base64url'))
            && tampered.split('.').slice(0, 2).join('.') === token.split('.').slice(0, 2).join('.');
          assert.equal(reply.status, same ? 200 : 400, tampered);
        }),
        { numRuns: 100 },
      );
    });
  });
}
