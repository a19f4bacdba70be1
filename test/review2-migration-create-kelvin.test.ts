// Review 2 of the create-at-first-login fix (249077f, INVARIANTS 1; issue 12 item 3). The fix
// creates only "the form that stands for its key": the key itself, or, for an old service declared
// case-insensitive, a name that "lowercasing alone" makes the key. It lowercases with JavaScript's
// toLowerCase, which maps more than case: U+212A KELVIN SIGN to ASCII `k` (and U+212B ANGSTROM SIGN
// to `å`). An old service that compares names without ASCII case (as a case-insensitive service
// does) holds `kelvin` and `\u212Aelvin` as two people; the second to register is the attacker.
// Logging in first with `\u212Aelvin`, the attacker is created as Latchkey's `kelvin` with the
// attacker's password, and the real kelvin can never migrate.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ENGINES, startServer, post, decodeJwt, type TestServer } from './helpers.ts';

/** A Roypi-dialect old service that compares names without ASCII case, as case-insensitive services do. */
function asciiCaseInsensitiveOldService(accounts: Record<string, string>) {
  const fold = (name: string) => name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const unsigned = (claims: object) =>
    `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.x`;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      const holder = Object.keys(accounts).find((name) => fold(name) === fold(String(username)));
      if (req.url !== '/auth/access_token/' || holder === undefined || accounts[holder] !== password) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"non_field_errors":["Unable to log in."]}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: unsigned({ username: holder }), expires_in: '2030-01-01T00:00:00Z', user: holder }));
    });
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

for (const engine of ENGINES) {
  describe(`review2: create-at-first-login from a Kelvin-sign name, old service declared case-insensitive (${engine.name})`, () => {
    let old: Awaited<ReturnType<typeof asciiCaseInsensitiveOldService>>;
    let server: TestServer;
    before(async () => {
      old = await asciiCaseInsensitiveOldService({ kelvin: 'kelvin-real-password', '\u212Aelvin': 'attacker-password' });
      server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}`, LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' });
    });
    after(async () => {
      await server.close();
      await old.close();
    });

    it('the old service\'s "\\u212Aelvin" does not become Latchkey\'s "kelvin"', async () => {
      const attacker = await post(`${server.url}/auth/access_token/`, { username: '\u212Aelvin', password: 'attacker-password' });
      const asKelvin = attacker.status === 200 && decodeJwt(attacker.body.access_token).username === 'kelvin';
      const victim = await post(`${server.url}/auth/access_token/`, { username: 'kelvin', password: 'kelvin-real-password' });
      assert.deepEqual(
        { attackerHoldsKelvin: asKelvin, victimLogin: victim.status },
        { attackerHoldsKelvin: false, victimLogin: 200 },
        `attacker: ${attacker.status} ${attacker.text.slice(0, 80)}; victim: ${victim.status} ${victim.text}`,
      );
    });
  });
}
