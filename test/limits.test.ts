// Rate limits and lockout shared through a real Redis by every instance.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ENGINES, needs, startServer, freshStore, post, createUser, type TestServer } from './helpers.ts';
import { startRedisServer, haveRedisServer, REDIS_SERVER, type RedisServer } from './redis-server.ts';

const REDIS = process.env.TEST_REDIS_URL;
const redisSkip = needs('TEST_REDIS_URL is not set', !!REDIS);

for (const engine of ENGINES) describe(`limits shared through Redis, on ${engine.name}`, { skip: redisSkip }, () => {
  /**
   * Two instances on one store and one Redis namespace of their own, with a user of their own:
   * each test starts from empty counters, whatever ran before it.
   */
  async function pair(username: string) {
    const store = await freshStore(engine);
    const env = {
      REDIS_URL: REDIS!,
      LATCHKEY_REDIS_PREFIX: `latchkey-test-${crypto.randomBytes(4).toString('hex')}`,
      LATCHKEY_LOCKOUT_THRESHOLD: '3',
      LATCHKEY_IP_RATE_LIMIT: '12',
    };
    const a = await startServer(engine, env, store);
    const b = await startServer(engine, env, store);
    await createUser(a, { username, email: `${username}@example.com`, password: `${username}-password` });
    return {
      a,
      b,
      async close() {
        await a.close();
        await b.close();
        await store.drop();
      },
    };
  }

  it('failures on one instance lock the username out on the other', async () => {
    const { a, b, close } = await pair('trinity');
    try {
      for (let i = 0; i < 3; i++) {
        const server = i % 2 ? b : a;
        assert.equal((await post(`${server.url}/v1/login`, { username: 'trinity', password: `wrong-${i}` })).status, 401);
      }
      const locked = await post(`${b.url}/v1/login`, { username: 'trinity', password: 'trinity-password' });
      assert.equal(locked.status, 429);
      assert.deepEqual(locked.body, { status: 429, message: 'Password attempts exceeded.' });
      const roypi = await post(`${a.url}/auth/access_token/`, { username: 'trinity', password: 'trinity-password' });
      assert.equal(roypi.status, 429);
      assert.match(roypi.body.detail, /^Request was throttled\. Expected available in \d+ seconds\.$/);
      assert.ok(Number(roypi.headers.get('retry-after')) > 0);
    } finally {
      await close();
    }
  });

  it('the per-IP budget is shared too', async () => {
    const { a, b, close } = await pair('tank');
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 13; i++) {
        const server = i % 2 ? b : a;
        statuses.push((await post(`${server.url}/api/authenticate`, { username: `nobody${i}@example.com`, password: 'whatever' })).status);
      }
      // 12 a minute across both instances: each instance saw 6 or 7, and the 13th is refused.
      assert.deepEqual(statuses, [...Array(12).fill(401), 429]);
    } finally {
      await close();
    }
  });
});

// A Redis of the test's own, so it can be stopped without disturbing anything else.
describe('limits when Redis goes away', { skip: needs(`no ${REDIS_SERVER}`, haveRedisServer) }, () => {
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({ name: 'sqlite' }, { REDIS_URL: redis.url, LATCHKEY_LOCKOUT_THRESHOLD: '3' });
    await createUser(server, { username: 'morpheus', email: 'morpheus@example.com', password: 'morpheus-password' });
  });
  after(async () => {
    await server.close();
    await redis.kill();
  });

  it('logins keep working, and the lockout keeps counting, in the store', async () => {
    const login = (password: string) => post(`${server.url}/v1/login`, { username: 'morpheus', password });
    assert.equal((await login('morpheus-password')).status, 200);
    await redis.kill();
    assert.equal((await login('morpheus-password')).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await login(`wrong-${i}`)).status, 401);
    assert.equal((await login('morpheus-password')).status, 429);
  });
});
