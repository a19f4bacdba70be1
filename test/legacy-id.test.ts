// Importing from a system with 64-bit ids (INVARIANTS.md 2, issue 12 item 4): Latchkey numbers the
// users itself, and the old id is kept as `legacy_id`, an attribute (never a `sub`), shown with the
// user, unique, and addressable explicitly (INVARIANTS.md 3): /admin/legacy-ids/<legacy id>… in
// the admin API and `--legacy-id` in the CLI. Both stores.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ADMIN_TOKEN, ENGINES, freshStore, startServer, post, call, decodeJwt, type FreshStore, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const BIG = '18446744073709551615';
const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end();
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

for (const engine of ENGINES) {
  describe(`legacy ids on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;
    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, {}, store);
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    const importLines = (lines: string[], update = false) =>
      call(`${server.url}/admin/users/import${update ? '?update=true' : ''}`, { body: lines.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });

    it('an out-of-range id is refused with a pointer to legacy_id; given as legacy_id the row goes in, numbered by Latchkey', async () => {
      const refused = await importLines([`{"id": "${BIG}", "username": "wide"}`]);
      assert.equal(refused.body.rejected, 1, refused.text);
      assert.match(refused.body.rejects[0].reason, /legacy_id/);

      const reply = await importLines([
        `{"legacy_id": "${BIG}", "username": "wide", "email": "wide@example.com", "password": "wide-password-1"}`,
        '{"legacy_id": "acct:7f3e-01", "username": "opaque", "password": "opaque-password-1"}',
      ]);
      assert.deepEqual([reply.status, reply.body.imported, reply.body.rejected], [200, 2, 0], reply.text);

      const byName = await call(`${server.url}/admin/users/wide`, { headers: admin });
      assert.equal(byName.body.legacy_id, BIG, byName.text);
      assert.ok(Number.isSafeInteger(byName.body.id), byName.text);
      const login = await post(`${server.url}/v1/login`, { username: 'wide', password: 'wide-password-1' });
      assert.equal(decodeJwt(login.body.access_token).sub, String(byName.body.id), 'the sub is the id Latchkey assigned, never the legacy id');

      const byLegacy = await call(`${server.url}/admin/legacy-ids/${BIG}`, { headers: admin });
      assert.deepEqual([byLegacy.status, byLegacy.body.username, byLegacy.body.id], [200, 'wide', byName.body.id], byLegacy.text);
      const opaque = await call(`${server.url}/admin/legacy-ids/${encodeURIComponent('acct:7f3e-01')}`, { headers: admin });
      assert.deepEqual([opaque.status, opaque.body.username], [200, 'opaque'], opaque.text);
      // The other calls on a user work through the same addressing.
      const disabled = await post(`${server.url}/admin/legacy-ids/${BIG}/disable`, {}, admin);
      assert.deepEqual([disabled.status, disabled.body.status, disabled.body.legacy_id], [200, 'disabled', BIG], disabled.text);
      assert.equal((await post(`${server.url}/admin/legacy-ids/${BIG}/enable`, {}, admin)).body.status, 'active');
      // Unknown: 404; listed users carry it too; users without one show null.
      assert.equal((await call(`${server.url}/admin/legacy-ids/nobody`, { headers: admin })).status, 404);
      const page = await call(`${server.url}/admin/users`, { headers: admin });
      assert.deepEqual(
        page.body.users.map((u: { username: string; legacy_id: string | null }) => [u.username, u.legacy_id]),
        [['wide', BIG], ['opaque', 'acct:7f3e-01']],
      );
      const plain = await post(`${server.url}/admin/users`, { username: 'plain', email: 'plain@example.com', password: 'plain-password-1' }, admin);
      assert.equal(plain.body.legacy_id, null, plain.text);
    });

    it('a legacy id is unique, printable and bounded; each refusal names its line', async () => {
      const reply = await importLines([
        `{"legacy_id": "${BIG}", "username": "thief", "password": "thief-password-1"}`,
        '{"legacy_id": "has space", "username": "spaced"}',
        '{"legacy_id": "ctl\\u0007", "username": "bell"}',
        `{"legacy_id": "${'9'.repeat(65)}", "username": "long"}`,
        '{"legacy_id": "ｗｉｄｅ", "username": "fullwidth"}',
        '{"legacy_id": 42, "username": "numeric"}',
        '{"legacy_id": "dup-1", "username": "first-dup"}',
        '{"legacy_id": "dup-1", "username": "second-dup"}',
        '{"legacy_id": "..", "username": "dot-dot"}',
        '{"legacy_id": ".", "username": "dot"}',
      ]);
      assert.equal(reply.status, 200, reply.text);
      const rejects = [...reply.body.rejects].sort((a: { line: number }, b: { line: number }) => a.line - b.line);
      assert.deepEqual(rejects.map((r: { line: number }) => r.line), [1, 2, 3, 4, 5, 6, 8, 9, 10], reply.text);
      assert.match(rejects[0].reason, /legacy_id belongs to another user/);
      assert.equal((await call(`${server.url}/admin/legacy-ids/${BIG}`, { headers: admin })).body.username, 'wide');
      assert.equal((await call(`${server.url}/admin/legacy-ids/dup-1`, { headers: admin })).body.username, 'first-dup');
      const overlong = await call(`${server.url}/admin/legacy-ids/${'9'.repeat(65)}`, { headers: admin });
      assert.equal(overlong.status, 400, overlong.text);
    });

    it('an update may give an account its legacy id, never one another holds; export carries it for a round trip', async () => {
      const given = await importLines(['{"username": "plain", "legacy_id": "old-plain"}'], true);
      assert.equal(given.body.updated, 1, given.text);
      assert.equal((await call(`${server.url}/admin/legacy-ids/old-plain`, { headers: admin })).body.username, 'plain');
      const stolen = await importLines(['{"username": "plain", "legacy_id": "acct:7f3e-01"}'], true);
      assert.equal(stolen.body.rejected, 1, stolen.text);
      assert.equal((await call(`${server.url}/admin/legacy-ids/acct:7f3e-01`, { headers: admin })).body.username, 'opaque');
      const again = await importLines(['{"username": "plain", "legacy_id": "old-plain"}'], true);
      assert.deepEqual([again.body.updated, again.body.skipped], [0, 1], again.text);
    });

    it('the CLI finds a user by --legacy-id, and shows it in `users get`', async () => {
      const env = { ...store.env, LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN };
      const found = await cli(['users', 'get', '--legacy-id', BIG], env);
      assert.equal(found.code, 0, found.stderr);
      assert.deepEqual([JSON.parse(found.stdout).username, JSON.parse(found.stdout).legacy_id], ['wide', BIG]);
      const missing = await cli(['users', 'get', '--legacy-id', 'nobody'], env);
      assert.equal(missing.code, 1, missing.stderr);
      const both = await cli(['users', 'get', 'wide', '--legacy-id', BIG], env);
      assert.equal(both.code, 2, both.stderr);
      const exported = await cli(['users', 'export'], env);
      assert.equal(exported.code, 0, exported.stderr);
      const rows = exported.stdout.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(rows.find((r) => r.username === 'wide').legacy_id, BIG);
    });
  });
}
