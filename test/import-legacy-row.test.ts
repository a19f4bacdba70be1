// An import row marked `migration: legacy` (written by export for a user awaiting migration since
// before the old service's identifier was kept) stays legacy: its names are stored keys, never
// taken as that identifier; only a declared case-insensitive old service is asked, and only about
// a name the identity key cannot have changed (as migration 0010). Review 2, f570e95's siblings.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_TOKEN, ENGINES, startServer, post, call, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/x-ndjson' };

/** A Roypi-dialect old service that compares names without ASCII case. */
function asciiCaseInsensitiveOldService(accounts: Record<string, string>) {
  const fold = (name: string) => name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { username, password } = JSON.parse(body || '{}');
      const holder = Object.keys(accounts).find((name) => fold(name) === fold(String(username)));
      if (holder === undefined || accounts[holder] !== password) return void res.writeHead(400).end('{}');
      const claims = Buffer.from(JSON.stringify({ username: holder })).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `e30.${claims}.x`, user: holder }));
    });
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

for (const engine of ENGINES) {
  describe(`import of a legacy awaiting row (${engine.name})`, () => {
    let old: Awaited<ReturnType<typeof asciiCaseInsensitiveOldService>>;
    let server: TestServer;
    before(async () => {
      old = await asciiCaseInsensitiveOldService({ Alice: 'alice-old-password', 'Stra\u00DFe': 'strasse-old-password' });
      server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}`, LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'true' });
    });
    after(async () => {
      await server.close();
      await old.close();
    });

    it('rejects a legacy row with a password or managed_by external, and an unknown migration value', async () => {
      const rows = [
        { username: 'one', password: 'a-long-enough-password-1', migration: 'legacy' },
        { username: 'two', managed_by: 'external', migration: 'legacy' },
        { username: 'three', migration: 'migrated' },
      ];
      const answer = await call(`${server.url}/admin/users/import`, { body: rows.map((r) => JSON.stringify(r)).join('\n'), headers: admin });
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual({ imported: answer.body.imported, rejected: answer.body.rejected }, { imported: 0, rejected: 3 }, answer.text);
    });

    it('keeps the row legacy: asked only as the legacy rules allow, never given the row\'s key as identifier', async () => {
      const rows = [
        { username: 'alice', email: 'alice@example.com', migration: 'legacy' },
        { username: 'strasse', migration: 'legacy' },
      ];
      const answer = await call(`${server.url}/admin/users/import`, { body: rows.map((r) => JSON.stringify(r)).join('\n'), headers: admin });
      assert.equal(answer.body.imported, 2, answer.text);
      // An update with the same legacy row gives the waiting user no identifier.
      const again = await call(`${server.url}/admin/users/import?update=true`, { body: JSON.stringify(rows[1]), headers: admin });
      assert.equal(again.status, 200, again.text);
      const strasse = await server.core.users.find({ username: 'strasse' });
      assert.equal((await server.core.store.migrationOf(strasse.id))?.upstream_username, null);
      // `strasse` may stand for the old service's `Straße`: not asked about (waits for a re-import).
      const rekeyed = await post(`${server.url}/auth/access_token/`, { username: 'strasse', password: 'strasse-old-password' });
      // `alice`, ASCII: asked about as the legacy rules allow, for a login typed as it up to ASCII case.
      const legacy = await post(`${server.url}/auth/access_token/`, { username: 'Alice', password: 'alice-old-password' });
      assert.deepEqual({ rekeyed: rekeyed.status, legacy: legacy.status }, { rekeyed: 400, legacy: 200 }, `${rekeyed.text} ${legacy.text}`);
    });
  });
}
