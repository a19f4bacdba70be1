// A user awaiting migration is exported with the identifier the old service knows (as imported,
// case kept), not the stored key: else the import elsewhere keeps `alice` as what to ask an
// exact-matching old service about, and the other person `alice` there completes the imported
// `Alice` (issue 12 item 3's takeover, through export and import).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_TOKEN, ENGINES, startServer, post, call, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** A Roypi-dialect old service that compares names exactly. */
function exactOldService(accounts: Record<string, string>) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      if (!Object.hasOwn(accounts, username) || accounts[username] !== password) return void res.writeHead(400).end('{}');
      const claims = Buffer.from(JSON.stringify({ username })).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `e30.${claims}.x`, user: username }));
    });
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

for (const engine of ENGINES) {
  describe(`export of a user awaiting migration (${engine.name})`, () => {
    let old: Awaited<ReturnType<typeof exactOldService>>;
    let source: TestServer;
    let target: TestServer;
    before(async () => {
      old = await exactOldService({ Alice: 'victim-old-password', alice: 'attacker-old-password' });
      source = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` });
      target = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` });
    });
    after(async () => {
      await target.close();
      await source.close();
      await old.close();
    });

    it('keeps the identifier as imported, so only the old service\'s "Alice" completes it elsewhere', async () => {
      const first = await call(`${source.url}/admin/users/import`, {
        body: JSON.stringify({ username: 'Alice', email: 'Alice@Example.com' }),
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      assert.equal(first.body.imported, 1, first.text);
      const rows: string[] = [];
      for await (const row of source.core.transfer.exportUsers()) rows.push(JSON.stringify(row));
      const copied = await call(`${target.url}/admin/users/import`, { body: rows.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });
      assert.equal(copied.body.imported, 1, copied.text);
      const attacker = await post(`${target.url}/auth/access_token/`, { username: 'alice', password: 'attacker-old-password' });
      const victim = await post(`${target.url}/auth/access_token/`, { username: 'Alice', password: 'victim-old-password' });
      assert.deepEqual({ attacker: attacker.status, victim: victim.status }, { attacker: 400, victim: 200 }, rows.join('\n'));
    });
  });
}
