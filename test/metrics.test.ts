// Prometheus metrics: events by kind, requests by route pattern (never by token or name).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, post, call, createUser, type TestServer } from './helpers.ts';

for (const engine of ENGINES) describe(`metrics on ${engine.name}`, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(engine, { LATCHKEY_METRICS_TOKEN: 'metrics-token-0123456789' });
  });
  after(() => server.close());

  const scrape = () => call(`${server.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });

  it('counts auth events and requests by route', async () => {
    await createUser(server, { username: 'metric-user', email: 'metric@example.com', password: 'metric-password' });
    await post(`${server.url}/v1/login`, { username: 'metric-user', password: 'metric-password' });
    await post(`${server.url}/v1/login`, { username: 'metric-user', password: 'wrong-password' });
    await post(`${server.url}/auth/verify_token/`, { token: 'secret-looking-token' });
    const { status, text, headers } = await scrape();
    assert.equal(status, 200);
    assert.match(headers.get('content-type')!, /text\/plain/);
    assert.match(text, /latchkey_auth_events_total\{kind="login"\} 1/);
    assert.match(text, /latchkey_auth_events_total\{kind="login_failed"\} 1/);
    assert.match(text, /latchkey_auth_events_total\{kind="user_created"\} 1/);
    assert.match(text, /latchkey_http_request_duration_seconds_count\{route="\/v1\/login",method="POST",status="200"\} 1/);
    assert.match(text, /latchkey_http_request_duration_seconds_count\{route="\/v1\/login",method="POST",status="401"\} 1/);
    assert.match(text, /latchkey_process_cpu_seconds_total/);
    assert.ok(!text.includes('secret-looking-token'));
    assert.ok(!text.includes('metric-user'));
  });

  it('needs the metrics token when one is set; health and readiness answer', async () => {
    assert.equal((await call(`${server.url}/metrics`)).status, 401);
    assert.equal((await call(`${server.url}/health`)).body.status, 'ok');
    assert.equal((await call(`${server.url}/ready`)).body.status, 'ok');
  });
});
