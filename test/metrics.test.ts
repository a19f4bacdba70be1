// Prometheus metrics: events by kind, requests by route pattern (never by token or name).
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, post, call, createUser, type TestServer } from './helpers.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdefghijklmn';

/** The value of one sample, by its exact name and labels: a whole line, so `1` never matches `10`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('reading a sample', () => {
  it('matches the whole series and the whole value', () => {
    const text = 'a_total{kind="login"} 12\na_total{kind="login_failed"} 1\n';
    assert.equal(sample(text, 'a_total{kind="login"}'), 12);
    assert.equal(sample(text, 'a_total{kind="login_failed"}'), 1);
    assert.equal(sample(text, 'a_total{kind="log"}'), undefined);
  });
});

for (const engine of ENGINES) describe(`metrics on ${engine.name}`, () => {
  let server: TestServer | undefined;
  afterEach(() => server?.close());

  const scrape = (token?: string) => call(`${server!.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('counts auth events and requests by route', async () => {
    server = await startServer(engine, { LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
    await createUser(server, { username: 'metric-user', email: 'metric@example.com', password: 'metric-password' });
    await post(`${server.url}/v1/login`, { username: 'metric-user', password: 'metric-password' });
    await post(`${server.url}/v1/login`, { username: 'metric-user', password: 'wrong-password' });
    await post(`${server.url}/v1/login`, { username: 'metric-user', password: 'wrong-password' });
    await post(`${server.url}/auth/verify_token/`, { token: 'secret-looking-token' });
    const { status, text, headers } = await scrape(METRICS_TOKEN);
    assert.equal(status, 200);
    assert.match(headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(text, 'latchkey_auth_events_total{kind="login"}'), 1);
    assert.equal(sample(text, 'latchkey_auth_events_total{kind="login_failed"}'), 2);
    assert.equal(sample(text, 'latchkey_auth_events_total{kind="user_created"}'), 1);
    assert.equal(sample(text, 'latchkey_http_request_duration_seconds_count{route="/v1/login",method="POST",status="200"}'), 1);
    assert.equal(sample(text, 'latchkey_http_request_duration_seconds_count{route="/v1/login",method="POST",status="401"}'), 2);
    assert.equal(sample(text, 'latchkey_http_request_duration_seconds_count{route="/auth/verify_token/",method="POST",status="400"}'), 1);
    assert.ok((sample(text, 'latchkey_process_cpu_seconds_total') ?? -1) >= 0);
    assert.ok(!text.includes('secret-looking-token'));
    assert.ok(!text.includes('metric-user'));
  });

  it('shows how busy the costly-hash gate is, and how many logins it turned away', async () => {
    server = await startServer(engine, { LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
    // An imported bcrypt hash (cost 4, of 'old-password-1') is checked at the gate.
    const bcrypt4 = '$2b$04$GJTZyOlTWfK.ZoZUP1JiuOYq4y.2R5aD/RR8WIsLPK0edpPpFPUEK';
    async function* rows() {
      yield { line: 2, fields: { username: 'gate-user', password_hash: bcrypt4 } };
    }
    assert.equal((await server.core.transfer.importUsers(rows())).imported, 1);
    assert.equal((await post(`${server.url}/v1/login`, { username: 'gate-user', password: 'old-password-1' })).status, 200);
    const { running, waiting, checked, refused } = server.core.hashGate.stats();
    assert.deepEqual({ running, waiting, checked, refused }, { running: 0, waiting: 0, checked: 1, refused: 0 });
    const { text } = await scrape(METRICS_TOKEN);
    assert.equal(sample(text, 'latchkey_costly_hash_checks{state="running"}'), running);
    assert.equal(sample(text, 'latchkey_costly_hash_checks{state="waiting"}'), waiting);
    assert.equal(sample(text, 'latchkey_costly_hash_checks_total{outcome="checked"}'), checked);
    assert.equal(sample(text, 'latchkey_costly_hash_checks_total{outcome="refused"}'), refused);
  });

  it('with LATCHKEY_METRICS_TOKEN set, answers only that bearer token', async () => {
    server = await startServer(engine, { LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
    for (const reply of [await scrape(), await scrape('wrong-token-0123456789'), await call(`${server.url}/metrics`, { headers: { authorization: `Token ${METRICS_TOKEN}` } })]) {
      assert.equal(reply.status, 401);
      assert.deepEqual(reply.body, { error: 'unauthorized', error_description: 'Metrics token required.' });
      assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="metrics"');
      assert.ok(!reply.text.includes('latchkey_'));
    }
    const ok = await scrape(METRICS_TOKEN);
    assert.equal(ok.status, 200);
    assert.ok(sample(ok.text, 'latchkey_process_cpu_seconds_total') !== undefined);
  });

  it('without LATCHKEY_METRICS_TOKEN, is open to any scraper', async () => {
    server = await startServer(engine);
    const open = await scrape();
    assert.equal(open.status, 200);
    assert.ok(sample(open.text, 'latchkey_process_cpu_seconds_total') !== undefined);
    assert.equal((await scrape('any-token-at-all')).status, 200);
  });

  it('health and readiness answer', async () => {
    server = await startServer(engine, { LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
    const health = await call(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok' });
    const ready = await call(`${server.url}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ok');
  });
});
