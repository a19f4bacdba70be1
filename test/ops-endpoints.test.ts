// What an operator meets by HTTP: refusals that say which setting turns a switched-off API on,
// an index at `/`, and health and readiness under both their names, including readiness
// answering 503 once the store is gone.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { ENGINES, startServer, freshStore, call, post, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';

const INTROSPECTION_TOKEN = 'introspection-token-for-ops-tests-0123456789';

for (const engine of ENGINES) {
  describe(`switched-off endpoints say how to switch them on, on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine, { LATCHKEY_ADMIN_TOKEN: '', LATCHKEY_INTROSPECTION_TOKEN: '' });
    });
    after(() => server.close());

    it('the admin API, off, names LATCHKEY_ADMIN_TOKEN in its own error shape', async () => {
      for (const [method, path] of [
        ['GET', '/admin'],
        ['GET', '/admin/users'],
        ['POST', '/admin/users'],
        ['GET', '/admin/users/alice/sessions'],
        ['DELETE', '/admin/users/alice'],
      ]) {
        const reply = await call(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        assert.equal(reply.status, 404, `${method} ${path}`);
        assert.deepEqual(Object.keys(reply.body).sort(), ['error', 'message'], `${method} ${path}: ${reply.text}`);
        assert.equal(reply.body.error, 'admin_api_disabled');
        assert.match(reply.body.message, /LATCHKEY_ADMIN_TOKEN/);
      }
    });

    it('introspection, off, names LATCHKEY_INTROSPECTION_TOKEN in RFC 6750 shape', async () => {
      for (const method of ['GET', 'POST']) {
        const reply = await call(`${server.url}/introspect`, { method, body: method === 'POST' ? 'token=abc' : undefined });
        assert.equal(reply.status, 404, method);
        assert.deepEqual(Object.keys(reply.body).sort(), ['error', 'error_description'], reply.text);
        assert.equal(reply.body.error, 'introspection_disabled');
        assert.match(reply.body.error_description, /LATCHKEY_INTROSPECTION_TOKEN/);
      }
    });

    it('GET / lists what is served, and how to turn on what is off', async () => {
      const reply = await call(`${server.url}/`);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.service, 'latchkey');
      assert.deepEqual(reply.body.apis, { wikimedia: '/v1', roypi: '/auth', ziik: '/api' });
      assert.equal(reply.body.endpoints.health, '/health');
      assert.equal(reply.body.endpoints.jwks, '/.well-known/jwks.json');
      assert.match(reply.body.endpoints.admin, /^off: set LATCHKEY_ADMIN_TOKEN/);
      assert.match(reply.body.endpoints.introspection, /^off: set LATCHKEY_INTROSPECTION_TOKEN/);
      // Each path it names answers.
      for (const path of [reply.body.endpoints.health, reply.body.endpoints.ready, reply.body.endpoints.jwks, reply.body.endpoints.discovery]) {
        assert.equal((await call(`${server.url}${path}`)).status, 200, path);
      }
    });

    it('an unknown path points at GET /', async () => {
      const reply = await call(`${server.url}/no-such-thing`);
      assert.equal(reply.status, 404);
      assert.equal(reply.body.error, 'not_found');
      assert.match(reply.body.error_description, /GET \//);
    });
  });

  describe(`switched-on endpoints, and health under both names, on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;
    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, { LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION_TOKEN }, store);
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    it('GET / shows admin and introspection on, and they answer as themselves', async () => {
      const index = await call(`${server.url}/`);
      assert.equal(index.body.endpoints.admin, '/admin');
      assert.equal(index.body.endpoints.introspection, '/introspect');
      const admin = await call(`${server.url}/admin/users`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(admin.status, 200);
      const unauthorized = await call(`${server.url}/admin/users`);
      assert.equal(unauthorized.status, 401);
      assert.equal(unauthorized.body.error, 'unauthorized');
      const introspect = await post(`${server.url}/introspect`, { token: 'not-a-token' }, { authorization: `Bearer ${INTROSPECTION_TOKEN}` });
      assert.deepEqual(introspect.body, { active: false });
    });

    it('/healthz and /readyz answer as /health and /ready', async () => {
      for (const [alias, path] of [['/healthz', '/health'], ['/readyz', '/ready']]) {
        const [a, b] = [await call(`${server.url}${alias}`), await call(`${server.url}${path}`)];
        assert.equal(a.status, 200, alias);
        assert.deepEqual(a.body, { status: 'ok' });
        assert.deepEqual(a.body, b.body);
      }
    });

    it('readiness answers 503 once the store is gone, liveness still 200', async () => {
      if (engine.name === 'postgres') {
        // The database disappears under the running server, as when PostgreSQL is lost.
        const base = process.env.TEST_DATABASE_URL!;
        const name = new URL(store.env.DATABASE_URL).pathname.slice(1);
        const admin = postgres(base, { max: 1, onnotice: () => {} });
        await admin.unsafe(`drop database ${name} with (force)`);
        await admin.end();
      } else {
        // SQLite lives in the process: the closest to losing it is the store's connection closing.
        await server.core.store.close();
      }
      for (const path of ['/ready', '/readyz']) {
        const reply = await call(`${server.url}${path}`);
        assert.equal(reply.status, 503, path);
        assert.deepEqual(reply.body, { status: 'unavailable' });
      }
      for (const path of ['/health', '/healthz']) assert.equal((await call(`${server.url}${path}`)).status, 200, path);
    });
  });
}
