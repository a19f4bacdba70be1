// A store fault is a 503 with Retry-After in each API's own error shape, never a 500; /ready says
// 503 within its own deadline. PostgreSQL refused for real behind a fault proxy (test/fault-proxy.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { needs, freshStore, startServer, call, post, ADMIN_TOKEN } from './helpers.ts';
import { startFaultProxy } from './fault-proxy.ts';

const skip = needs('TEST_DATABASE_URL is not set', !!process.env.TEST_DATABASE_URL);

describe('store faults answer 503 in each API shape', { skip }, () => {
  it('refused and paused PostgreSQL: 503 with Retry-After in /v1, /auth, /api, admin and resource shapes; /ready 503 in time', async () => {
    const store = await freshStore({ name: 'postgres' });
    const real = new URL(store.env.DATABASE_URL);
    const proxy = await startFaultProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(real);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const server = await startServer({ name: 'postgres' }, { DATABASE_URL: viaProxy.toString(), LATCHKEY_DB_TIMEOUT_MS: '1500' }, store);
    try {
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const cases: Array<[string, () => ReturnType<typeof call>, (body: any) => void]> = [
        ['/v1/login', () => post(`${server.url}/v1/login`, { username: 'someone', password: 'a password' }), (b) => assert.deepEqual(b, { status: 503, message: 'Service Unavailable.' })],
        ['/auth/access_token/', () => post(`${server.url}/auth/access_token/`, { username: 'someone', password: 'a password' }), (b) => assert.deepEqual(b, { detail: 'Service temporarily unavailable, try again later.' })],
        ['/api/authenticate', () => post(`${server.url}/api/authenticate`, { username: 'someone@example.com', password: 'a password' }), (b) => assert.equal(b.message, 'Service Unavailable.')],
        ['/admin/users', () => post(`${server.url}/admin/users`, { username: 'someone', email: 'someone@example.com', password: 'a good password' }, admin), (b) => assert.equal(b.error, 'unavailable')],
      ];
      for (const fault of ['refuse', 'pause'] as const) {
        proxy[fault]();
        for (const [name, send, shape] of cases) {
          const started = Date.now();
          const reply = await send();
          assert.equal(reply.status, 503, `${fault} ${name}: ${reply.status} ${reply.text}`);
          assert.ok(Number(reply.headers.get('retry-after')) > 0, `${fault} ${name}: Retry-After`);
          shape(reply.body);
          assert.ok(Date.now() - started < 1500 * 2 + 1000, `${fault} ${name}: within the deadline`);
        }
        const started = Date.now();
        const ready = await call(`${server.url}/ready`);
        assert.equal(ready.status, 503);
        assert.ok(Date.now() - started < 2500, '/ready within its own deadline');
        proxy.restore();
      }
      // Back: the next requests succeed.
      let ready = 0;
      for (let i = 0; i < 40 && ready !== 200; i++) {
        ready = (await call(`${server.url}/ready`)).status;
        if (ready !== 200) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(ready, 200);
      assert.equal((await post(`${server.url}/admin/users`, { username: 'someone', email: 'someone@example.com', password: 'a good password' }, admin)).status, 201);
    } finally {
      await server.close();
      await proxy.close();
      await store.drop();
    }
  });
});
