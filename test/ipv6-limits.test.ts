// One IPv6 subscriber holds a whole /64: the per-IP limits (and the operator-token throttle) count
// an IPv6 client by its /64, and an IPv4-mapped address as the IPv4 address it carries. Clients
// are told apart through LATCHKEY_TRUST_PROXY and X-Forwarded-For, as behind a real proxy.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, ENGINES, startServer, post, call, type TestServer } from './helpers.ts';
import { limitKeyOf } from '../src/limits/client-key.ts';

const from = (ip: string) => ({ 'x-forwarded-for': ip });
const login = { username: 'nobody', password: 'whatever-1' };
const INTROSPECTION = 'introspection-token-0123456789abcdefghij';

describe('limit keys of client addresses', () => {
  it('IPv6 by its /64 however written, IPv4-mapped as IPv4, IPv4 as is', () => {
    assert.equal(limitKeyOf('2001:db8:1:2::1'), limitKeyOf('2001:DB8:1:2:ffff:ffff:ffff:ffff'));
    assert.equal(limitKeyOf('2001:db8:1:2::1'), limitKeyOf('2001:0db8:0001:0002:0:0:0:0'));
    assert.notEqual(limitKeyOf('2001:db8:1:2::1'), limitKeyOf('2001:db8:1:3::1'));
    assert.equal(limitKeyOf('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(limitKeyOf('::ffff:c000:201'), '192.0.2.1');
    assert.equal(limitKeyOf('192.0.2.1'), '192.0.2.1');
    assert.equal(limitKeyOf('fe80::1%eth0'), limitKeyOf('fe80::2'));
  });
});

for (const engine of ENGINES) {
  describe(`IPv6 clients are limited per /64 on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine, { LATCHKEY_TRUST_PROXY: '1', LATCHKEY_IP_RATE_LIMIT: '3', LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION });
    });
    after(() => server.close());

    it('addresses in one /64 share one budget; another /64 has its own', async () => {
      const sameSlash64 = ['2001:db8:aa:1::1', '2001:db8:aa:1::2', '2001:db8:aa:1:dead:beef:0:1'];
      for (const ip of sameSlash64) assert.equal((await post(`${server.url}/v1/login`, login, from(ip))).status, 401, ip);
      const fourth = await post(`${server.url}/v1/login`, login, from('2001:db8:aa:1:ffff:ffff:ffff:fffe'));
      assert.equal(fourth.status, 429, 'a fourth address of the same /64 is over the budget');
      assert.equal((await post(`${server.url}/v1/login`, login, from('2001:db8:aa:2::1'))).status, 401, 'the next /64 has its own budget');
    });

    it('an IPv4-mapped IPv6 address spends the IPv4 address\'s budget', async () => {
      for (const ip of ['198.51.100.20', '::ffff:198.51.100.20', '::ffff:c633:6414']) {
        assert.equal((await post(`${server.url}/auth/access_token/`, login, from(ip))).status, 400, ip);
      }
      assert.equal((await post(`${server.url}/auth/access_token/`, login, from('198.51.100.20'))).status, 429);
    });

    it('wrong operator tokens are throttled per /64', async () => {
      const wrong = { authorization: 'Bearer wrong-token-wrong-token-wrong-token-0' };
      for (let i = 0; i < 10; i++) {
        const reply = await call(`${server.url}/admin/users`, { headers: { ...wrong, ...from(`2001:db8:bb:1::${(i + 1).toString(16)}`) } });
        assert.equal(reply.status, 401);
      }
      const throttled = await call(`${server.url}/admin/users`, { headers: { ...wrong, ...from('2001:db8:bb:1:1234::99') } });
      assert.equal(throttled.status, 429, 'the eleventh guess from the same /64');
      const other = await call(`${server.url}/admin/users`, { headers: { ...wrong, ...from('2001:db8:bb:2::1') } });
      assert.equal(other.status, 401);
    });

    it('wrong guesses from a neighbour never lock out the holder of the right token', async () => {
      const neighbour = (i: number) => from(`2001:db8:cc:1::${(i + 1).toString(16)}`);
      const wrong = { authorization: 'Bearer wrong-token-wrong-token-wrong-token-1' };
      for (let i = 0; i < 10; i++) assert.equal((await call(`${server.url}/admin/users`, { headers: { ...wrong, ...neighbour(i) } })).status, 401);
      for (let i = 0; i < 10; i++) {
        const reply = await call(`${server.url}/introspect`, { json: { token: 'x' }, headers: { ...wrong, ...neighbour(20 + i) } });
        assert.equal(reply.status, 429, 'the /64 is throttled on introspection too');
      }
      // The holder, in the same /64 and elsewhere: admin and introspection both answer.
      for (const ip of [neighbour(99), from('2001:db8:cc:2::1'), from('192.0.2.77')]) {
        assert.equal((await call(`${server.url}/admin/users`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...ip } })).status, 200);
        const introspected = await call(`${server.url}/introspect`, { json: { token: 'x' }, headers: { authorization: `Bearer ${INTROSPECTION}`, ...ip } });
        assert.equal(introspected.status, 200);
        assert.equal((introspected.body as { active: boolean }).active, false);
      }
      // And the guesser is still held off, right after the holder got in from its /64.
      for (let i = 0; i < 3; i++) {
        const reply = await call(`${server.url}/admin/users`, { headers: { ...wrong, ...neighbour(40 + i) } });
        assert.equal(reply.status, 429);
        assert.ok(Number(reply.headers.get('retry-after')) > 0);
      }
      const wrongIntrospection = await call(`${server.url}/introspect`, { json: { token: 'x' }, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...neighbour(50) } });
      assert.equal(wrongIntrospection.status, 429, 'a valid token of another kind is a wrong guess here');
    });
  });
}
