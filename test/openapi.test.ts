// GET /openapi.json: a valid OpenAPI 3.1 document (checked by a real validator) that covers
// every route served, and whose response shapes match what the server really answers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { ENGINES, startServer, call, post, createUser, ADMIN_TOKEN, type Reply, type TestServer } from './helpers.ts';

const INTROSPECTION_TOKEN = 'introspection-token-0123456789abcdefgh';

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; info: { version: string } };

const OPERATIONS_ALWAYS = [
  'get /',
  'get /.well-known/jwks.json',
  'get /.well-known/openid-configuration',
  'get /assets/latchkey.css',
  'get /forward-auth',
  'get /health',
  'get /healthz',
  'get /metrics',
  'get /ready',
  'get /readyz',
  'get /reset-password',
  'post /reset-password',
  'get /userinfo',
  'post /v1/login',
  'post /v1/token-refresh',
  'post /v1/token-revoke',
  'post /v1/forgot-password',
  'post /v1/forgot-password-confirm',
  'post /v1/change-password',
  'post /v1/new-password-required',
  'post /auth/access_token/',
  'post /auth/refresh_token/',
  'post /auth/verify_token/',
  'get /auth/user/',
  'post /api/authenticate',
  'get /api/renew',
  'post /api/renew',
  'post /api/password/request',
  'post /api/password/reset',
];
const OPERATIONS_ADMIN = [
  'post /admin/users',
  'get /admin/users',
  'get /admin/users/{user}',
  'delete /admin/users/{user}',
  'post /admin/users/{user}/disable',
  'post /admin/users/{user}/enable',
  'post /admin/users/{user}/password',
  'post /admin/users/{user}/sign-out',
  'post /admin/users/{user}/unlock',
  'get /admin/users/{user}/sessions',
  'get /admin/users/{user}/events',
  'get /admin/keys',
  'post /admin/keys/{kid}/retire',
  'post /admin/users/import',
  // The same calls naming a user by id (a username may be all digits).
  'get /admin/user-ids/{user}',
  'delete /admin/user-ids/{user}',
  'post /admin/user-ids/{user}/disable',
  'post /admin/user-ids/{user}/enable',
  'post /admin/user-ids/{user}/password',
  'post /admin/user-ids/{user}/sign-out',
  'get /admin/user-ids/{user}/sessions',
  'get /admin/user-ids/{user}/events',
  'post /admin/user-ids/{user}/unlock',
  // And by the id an imported user had in the old system.
  ...['get', 'delete'].map((m) => `${m} /admin/legacy-ids/{user}`),
  ...['disable', 'enable', 'password', 'sign-out', 'unlock'].map((a) => `post /admin/legacy-ids/{user}/${a}`),
  ...['sessions', 'events'].map((a) => `get /admin/legacy-ids/{user}/${a}`),
];

function operations(doc: Doc): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
}

async function openapi(server: TestServer): Promise<Doc> {
  const reply = await call(`${server.url}/openapi.json`);
  assert.equal(reply.status, 200);
  assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
  return reply.body;
}

describe('GET /openapi.json: the document', () => {
  it('is valid OpenAPI 3.1 and covers every route; admin and introspection only when on', async () => {
    const validator = new Validator();
    // The validator is real: it refuses a document without its required parts.
    assert.equal((await validator.validate({ openapi: '3.1.0', paths: {} })).valid, false);

    const engine = ENGINES[0];
    const off = await startServer(engine, { LATCHKEY_ADMIN_TOKEN: '' });
    const on = await startServer(engine, { LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION_TOKEN });
    try {
      for (const [server, expected] of [
        [off, OPERATIONS_ALWAYS],
        [on, [...OPERATIONS_ALWAYS, 'post /introspect', ...OPERATIONS_ADMIN]],
      ] as const) {
        const doc = await openapi(server);
        const result = await validator.validate(doc as never);
        assert.equal(result.valid, true, JSON.stringify(result.errors));
        assert.equal(doc.openapi, '3.1.0');
        assert.equal(doc.info.version, JSON.parse((await import('node:fs')).readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
        assert.deepEqual(operations(doc).sort(), [...expected].sort());
        for (const [path, item] of Object.entries(doc.paths)) {
          for (const [method, operation] of Object.entries(item)) {
            // A route added without documenting it here fails: every operation has a summary and a tag.
            assert.ok(operation.summary, `${method} ${path} has a summary`);
            assert.equal(operation.tags?.length, 1, `${method} ${path} has a tag`);
          }
        }
      }
      const admin = (await openapi(on)).paths['/admin/users'].post;
      assert.deepEqual(admin.security, [{ adminToken: [] }]);
      assert.deepEqual(Object.keys(admin.requestBody.content).sort(), ['application/json', 'application/x-www-form-urlencoded']);
      assert.deepEqual(admin.requestBody.content['application/json'].schema.required, ['username', 'email']);
    } finally {
      await off.close();
      await on.close();
    }
  });
});

for (const engine of ENGINES) {
  describe(`GET /openapi.json on ${engine.name}: real answers match the documented shapes`, () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

    /**
     * A server of its own for each test, with the users the calls below log in as (olga's password
     * is changed by the /v1 calls; ruth's never is), and the answers checked on it so far.
     */
    async function answering() {
      const server = await startServer(engine, { LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION_TOKEN });
      const doc = await openapi(server);
      await createUser(server, { username: 'olga', email: 'olga@example.com', password: 'olga-password' });
      await createUser(server, { username: 'temp', email: 'temp@example.com', temporary_password: 'temp-password' });
      await createUser(server, { username: 'ruth', email: 'ruth@example.com', password: 'ruth-password' });
      return { server, doc, checked: new Set<string>() };
    }
    type Answering = Awaited<ReturnType<typeof answering>>;

    /** Asserts the answer to `method path` matches the document's response for its status (or `default`). */
    function conforms({ doc, checked }: Answering, method: string, path: string, reply: Reply) {
      const template = Object.keys(doc.paths).find((p) => new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(path.split('?')[0]));
      assert.ok(template, `${path} is documented`);
      const operation = doc.paths[template][method.toLowerCase()];
      assert.ok(operation, `${method} ${template} is documented`);
      const response = operation.responses[String(reply.status)] ?? operation.responses.default;
      assert.ok(response, `${method} ${template} documents ${reply.status}`);
      const schema = response.content?.['application/json']?.schema;
      if (!schema) {
        assert.equal(reply.text, '', `${method} ${path} ${reply.status} has no documented body, and sends none`);
      } else {
        const validate = ajv.compile(schema);
        assert.ok(validate(reply.body), `${method} ${path} ${reply.status}: ${JSON.stringify(validate.errors)} in ${reply.text}`);
      }
      checked.add(`${method.toLowerCase()} ${template} ${operation.responses[String(reply.status)] ? reply.status : 'default'}`);
    }

    /** Calls on one server whose answers are checked against the document. */
    const checking = (on: Answering) => ({
      server: on.server,
      conforms: (method: string, path: string, reply: Reply) => conforms(on, method, path, reply),
      postTo: async (path: string, json: unknown, headers?: Record<string, string>) => {
        const reply = await post(`${on.server.url}${path}`, json, headers);
        conforms(on, 'POST', path, reply);
        return reply;
      },
      getFrom: async (path: string, headers?: Record<string, string>) => {
        const reply = await call(`${on.server.url}${path}`, { headers });
        conforms(on, 'GET', path, reply);
        return reply;
      },
    });

    const EXERCISES: Record<string, (calls: ReturnType<typeof checking>) => Promise<void>> = {
      'Wikimedia Enterprise /v1': async ({ server, postTo }) => {
        const login = await postTo('/v1/login', { username: 'olga', password: 'olga-password' });
        assert.equal(login.status, 200);
        assert.equal((await postTo('/v1/login', { username: 'temp', password: 'temp-password' })).body.challenge_name, 'NEW_PASSWORD_REQUIRED');
        assert.equal((await postTo('/v1/login', { username: 'olga', password: 'wrong-password' })).status, 401);
        assert.equal((await postTo('/v1/login', { username: 'olga' })).status, 422);
        assert.equal((await postTo('/v1/token-refresh', { username: 'olga', refresh_token: login.body.refresh_token })).status, 200);
        assert.equal((await postTo('/v1/forgot-password', { username: 'nobody' })).status, 204);
        assert.equal((await postTo('/v1/token-revoke', { refresh_token: login.body.refresh_token })).status, 204);
        assert.equal((await postTo('/v1/forgot-password-confirm', { username: 'olga', password: 'x-password', confirmation_code: '000000' })).status, 401);
        const again = await post(`${server.url}/v1/login`, { username: 'olga', password: 'olga-password' });
        const changed = await postTo('/v1/change-password', { access_token: again.body.access_token, previous_password: 'olga-password', proposed_password: 'olga-password-2' });
        assert.equal(changed.status, 204);
        const challenge = (await post(`${server.url}/v1/login`, { username: 'temp', password: 'temp-password' })).body;
        const answered = await postTo('/v1/new-password-required', { session: challenge.session, username: 'temp', new_password: 'temp-own-password' });
        assert.equal(answered.status, 200);
      },

      'Roypi /auth': async ({ postTo, getFrom }) => {
        const login = await postTo('/auth/access_token/', { username: 'ruth', password: 'ruth-password' });
        assert.equal(login.status, 200);
        assert.equal((await postTo('/auth/access_token/', { username: 'ruth', password: 'wrong-password' })).status, 400);
        assert.equal((await postTo('/auth/access_token/', { password: 'x' })).status, 400);
        assert.equal((await postTo('/auth/refresh_token/', { token: login.body.access_token })).status, 200);
        assert.equal((await postTo('/auth/verify_token/', { token: login.body.access_token })).status, 200);
        assert.equal((await getFrom('/auth/user/', { authorization: `Token ${login.body.access_token}` })).status, 200);
        assert.equal((await getFrom('/auth/user/')).status, 401);
      },

      'Ziik /api': async ({ server, conforms, postTo, getFrom }) => {
        const login = await postTo('/api/authenticate', { username: 'ruth@example.com', password: 'ruth-password' });
        assert.equal(login.status, 200);
        assert.equal((await postTo('/api/authenticate', { username: 'ruth@example.com', password: 'wrong-password' })).status, 401);
        assert.equal((await postTo('/api/authenticate', {})).status, 422);
        assert.equal((await getFrom('/api/renew', { authorization: `Bearer ${login.body[0].jwt}` })).status, 200);
        const renewed = await call(`${server.url}/api/renew`, { method: 'POST', headers: { authorization: `Bearer ${login.body[0].jwt}` } });
        conforms('POST', '/api/renew', renewed);
        assert.equal(renewed.status, 200);
        assert.equal((await postTo('/api/password/reset', { token: 'junk', email: 'ruth@example.com', password: 'p-password', password_confirm: 'p-password' })).status, 400);
        assert.equal((await postTo('/api/password/request', { email: 'nobody@example.com' })).status, 204);
      },

      'resource servers and operations': async ({ server, postTo, getFrom }) => {
        const jwt = (await post(`${server.url}/api/authenticate`, { username: 'ruth@example.com', password: 'ruth-password' })).body[0].jwt;
        const bearer = { authorization: `Bearer ${jwt}` };
        assert.equal((await getFrom('/userinfo', bearer)).status, 200);
        assert.equal((await getFrom('/userinfo', { authorization: 'Bearer junk' })).status, 401);
        assert.equal((await getFrom('/forward-auth', bearer)).status, 200);
        const introspector = { authorization: `Bearer ${INTROSPECTION_TOKEN}` };
        assert.equal((await postTo('/introspect', { token: jwt }, introspector)).body.active, true);
        assert.equal((await postTo('/introspect', { token: 'junk' }, introspector)).body.active, false);
        for (const path of ['/.well-known/jwks.json', '/.well-known/openid-configuration', '/health', '/healthz', '/ready', '/readyz', '/']) {
          assert.equal((await getFrom(path)).status, 200, path);
        }
      },

      'admin': async ({ server, conforms, postTo, getFrom }) => {
        const made = await postTo('/admin/users', { username: 'pia', email: 'pia@example.com', password: 'pia-password' }, admin);
        assert.equal(made.status, 201);
        assert.equal((await postTo('/admin/users', { username: 'pia', email: 'pia2@example.com', password: 'pia-password' }, admin)).status, 409);
        assert.equal((await getFrom('/admin/users?limit=2', admin)).status, 200);
        assert.equal((await getFrom('/admin/users/pia', admin)).status, 200);
        assert.equal((await getFrom('/admin/users/nobody', admin)).status, 404);
        await post(`${server.url}/v1/login`, { username: 'pia', password: 'pia-password' });
        assert.equal((await getFrom('/admin/users/pia/sessions', admin)).body.sessions.length, 1);
        assert.ok((await getFrom('/admin/users/pia/events', admin)).body.events.length > 0);
        assert.equal((await postTo('/admin/users/pia/sign-out', {}, admin)).status, 200);
        assert.equal((await postTo('/admin/users/pia/disable', {}, admin)).status, 200);
        assert.equal((await postTo('/admin/users/pia/enable', {}, admin)).status, 200);
        assert.equal((await postTo('/admin/users/pia/password', { password: 'pia-new-password' }, admin)).status, 200);
        assert.equal((await postTo('/admin/users/pia/unlock', {}, admin)).status, 200);
        const keys = await getFrom('/admin/keys', admin);
        const signing = keys.body.keys.find((k: { signing: boolean }) => k.signing).kid;
        assert.equal((await postTo(`/admin/keys/${signing}/retire`, {}, admin)).status, 200);
        const imported = await call(`${server.url}/admin/users/import`, {
          body: '{"username":"imported","email":"imported@example.com"}\n{"username":""}\n',
          headers: { ...admin, 'content-type': 'application/x-ndjson' },
        });
        conforms('POST', '/admin/users/import', imported);
        assert.deepEqual([imported.status, imported.body.imported, imported.body.rejected], [200, 1, 1]);
        // The same calls, naming the user by id.
        const byId = `/admin/user-ids/${made.body.id}`;
        assert.equal((await getFrom(byId, admin)).body.username, 'pia');
        assert.equal((await getFrom(`${byId}/sessions`, admin)).status, 200);
        assert.equal((await getFrom(`${byId}/events`, admin)).status, 200);
        for (const action of ['sign-out', 'disable', 'enable', 'unlock']) assert.equal((await postTo(`${byId}/${action}`, {}, admin)).status, 200, action);
        assert.equal((await postTo(`${byId}/password`, { password: 'pia-third-password' }, admin)).status, 200);
        const removedById = await call(`${server.url}${byId}`, { method: 'DELETE', headers: admin });
        conforms('DELETE', byId, removedById);
        assert.equal(removedById.status, 204);
        // And by legacy id.
        const legacy = await call(`${server.url}/admin/users/import`, {
          body: '{"username":"wide","legacy_id":"18446744073709551615","password":"wide-password"}\n',
          headers: { ...admin, 'content-type': 'application/x-ndjson' },
        });
        assert.equal(legacy.body.imported, 1, legacy.text);
        const byLegacy = '/admin/legacy-ids/18446744073709551615';
        assert.equal((await getFrom(byLegacy, admin)).body.username, 'wide');
        assert.equal((await getFrom(`${byLegacy}/sessions`, admin)).status, 200);
        assert.equal((await getFrom(`${byLegacy}/events`, admin)).status, 200);
        for (const action of ['sign-out', 'disable', 'enable', 'unlock']) assert.equal((await postTo(`${byLegacy}/${action}`, {}, admin)).status, 200, action);
        assert.equal((await postTo(`${byLegacy}/password`, { password: 'wide-other-password' }, admin)).status, 200);
        const removedByLegacy = await call(`${server.url}${byLegacy}`, { method: 'DELETE', headers: admin });
        conforms('DELETE', byLegacy, removedByLegacy);
        assert.equal(removedByLegacy.status, 204);
        await postTo('/admin/users', { username: 'pia', email: 'pia@example.com', password: 'pia-password' }, admin);
        const removed = await call(`${server.url}/admin/users/pia`, { method: 'DELETE', headers: admin });
        conforms('DELETE', '/admin/users/pia', removed);
        assert.equal(removed.status, 204);
      },
    };

    for (const [name, exercise] of Object.entries(EXERCISES)) {
      it(name, async () => {
        const on = await answering();
        try {
          await exercise(checking(on));
        } finally {
          await on.server.close();
        }
      });
    }

    it('checked every documented success answer against a real one', async () => {
      // Every call above, on one server of this test's own, then what they checked.
      const on = await answering();
      try {
        for (const exercise of Object.values(EXERCISES)) await exercise(checking(on));
      } finally {
        await on.server.close();
      }
      const { doc, checked } = on;
      // A reset's success needs the mailed secret: ziik.test.ts, wikimedia.test.ts and docs.test.ts cover those.
      const elsewhere = ['post /v1/forgot-password-confirm 204', 'post /api/password/reset 204'];
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, operation] of Object.entries(item)) {
          for (const [status, response] of Object.entries(operation.responses as Record<string, { content?: unknown }>)) {
            const key = `${method} ${path} ${status}`;
            if (!/^2/.test(status) || elsewhere.includes(key)) continue;
            // Answers that are not JSON (HTML, the stylesheet, Prometheus text) have nothing documented to match.
            if (!response.content && status !== '204' && path !== '/forward-auth') continue;
            assert.ok(checked.has(key), `${key} was checked against a real answer`);
          }
        }
      }
    });
  });
}
