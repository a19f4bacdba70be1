// An import row says whether a user without a password signs in elsewhere (`managed_by: external`,
// an SSO user) or awaits lazy migration: in CSV and JSON Lines alike, an external row stays
// external and the old service's password for the same name never completes it (issue 12 item 3).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { csvRows, jsonLines } from '../src/transfer/records.ts';
import { ENGINES, startServer, post, call, createUser, ADMIN_TOKEN, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

for (const engine of ENGINES) {
  describe(`import managed_by (${engine.name})`, () => {
    let old: TestServer;
    let server: TestServer;
    before(async () => {
      old = await startServer(engine);
      for (const name of ['csv_sso', 'json_sso', 'csv_waits']) await createUser(old, { username: name, email: `${name}@example.com`, password: `old-${name}-password` });
      server = await startServer(engine, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` });
    });
    after(async () => {
      await server.close();
      await old.close();
    });

    it('CSV and JSON Lines rows with managed_by external stay external, never migrated; with a password or another value they are rejected with their line', async () => {
      const rejects: { line: number; reason: string }[] = [];
      const csv = 'username,managed_by,password\ncsv_sso,external,\ncsv_waits,,\ncsv_bad,external,a-long-password-1\ncsv_odd,sso,\n';
      const csvCounts = await server.core.transfer.importUsers(csvRows(Readable.from([csv])), { onReject: (r) => rejects.push(r) });
      const json = [JSON.stringify({ username: 'json_sso', managed_by: 'external' }), JSON.stringify({ username: 'json_bad', managed_by: 'external', password_hash: 'pbkdf2_sha256$1000$salt$AAAA' })].join('\n');
      const jsonCounts = await server.core.transfer.importUsers(jsonLines(Readable.from([json])), { onReject: (r) => rejects.push(r) });
      assert.deepEqual([csvCounts.imported, csvCounts.rejected, jsonCounts.imported, jsonCounts.rejected], [2, 2, 1, 1], JSON.stringify(rejects));
      assert.deepEqual(rejects.map((r) => r.line), [4, 5, 2]);

      const logins: Record<string, number> = {};
      for (const name of ['csv_sso', 'json_sso', 'csv_waits']) logins[name] = (await post(`${server.url}/auth/access_token/`, { username: name, password: `old-${name}-password` })).status;
      assert.deepEqual(logins, { csv_sso: 400, json_sso: 400, csv_waits: 200 }, 'only the row without managed_by awaited migration');
      for (const name of ['csv_sso', 'json_sso']) {
        const user = await call(`${server.url}/admin/users/${name}`, { headers: admin });
        assert.equal(user.body.managed_by, 'external', user.text);
      }
      // And the export says so again.
      const exported: Record<string, unknown>[] = [];
      for await (const row of server.core.transfer.exportUsers()) exported.push(row as unknown as Record<string, unknown>);
      assert.deepEqual(
        Object.fromEntries(exported.map((r) => [r.username, r.managed_by ?? null])),
        { csv_sso: 'external', csv_waits: null, json_sso: 'external' },
      );
    });
  });
}
