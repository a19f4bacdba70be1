// Attack review (issue 12, item 3; INVARIANTS.md 1): lazy migration's create-at-first-login mode
// (no import; a Cognito-style source). An old service that compares names exactly holds `alice`
// and `Alice` (or `alice` and fullwidth `ａｌｉｃｅ`) as two people, as the README says. Latchkey
// creates the first of them to log in under the one key `alice`; the other can never migrate,
// and when the first is the attacker, the attacker holds the account `alice` (its tokens say
// `username: alice`) and the real alice is locked out for good. The same takeover the issue fixed
// for imported users, through the create path.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, post, decodeJwt, type TestServer } from './helpers.ts';

/** A Roypi-dialect old service that compares names exactly (byte for byte). */
function exactOldService(accounts: Record<string, string>) {
  const unsigned = (claims: object) =>
    `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.x`;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      if (req.url !== '/auth/access_token/' || !Object.hasOwn(accounts, username) || accounts[username] !== password) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"non_field_errors":["Unable to log in."]}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: unsigned({ username }), expires_in: '2030-01-01T00:00:00Z', user: username }));
    });
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

for (const [label, attackerName, env] of [
  ['a capitalised name (old service not declared case-insensitive, the default)', 'Alice', {}],
  ['a fullwidth name (old service declared case-insensitive)', 'ａｌｉｃｅ', { LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' }],
] as const) {
  describe(`attack: create-at-first-login under another old-service account's key: ${label}`, () => {
    let old: Awaited<ReturnType<typeof exactOldService>>;
    let server: TestServer;
    before(async () => {
      old = await exactOldService({ alice: 'alice-real-password', [attackerName]: 'attacker-password' });
      server = await startServer({ name: 'sqlite' }, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}`, ...env });
    });
    after(async () => {
      await server.close();
      await old.close();
    });

    it(`the old service's ${JSON.stringify(attackerName)} does not become Latchkey's "alice"`, async () => {
      const attacker = await post(`${server.url}/auth/access_token/`, { username: attackerName, password: 'attacker-password' });
      const asAlice = attacker.status === 200 && decodeJwt(attacker.body.access_token).username === 'alice';
      const victim = await post(`${server.url}/auth/access_token/`, { username: 'alice', password: 'alice-real-password' });
      assert.deepEqual(
        { attackerHoldsAlice: asAlice, victimLogin: victim.status },
        { attackerHoldsAlice: false, victimLogin: 200 },
        `attacker: ${attacker.status} ${attacker.text.slice(0, 80)}; victim: ${victim.status} ${victim.text}`,
      );
    });
  });
}
