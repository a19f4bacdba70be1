// Attack review (issue 12, item 3: "Never migrated: an external (SSO) user"). The export format has
// no managed_by, and an external user never has a hash to export, so exporting a deployment (with
// --with-hashes, as the README's move between stores says) and importing it elsewhere turns every
// SSO user into a user awaiting lazy migration: with LATCHKEY_MIGRATE_FROM set, the old service's
// password for the same name takes the SSO account over, the finding the issue fixed for users
// created as external.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, startServer, post, call, createUser, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('attack: an SSO user through export and import', () => {
  let source: TestServer;
  let old: TestServer;
  let target: TestServer;
  before(async () => {
    source = await startServer({ name: 'sqlite' });
    old = await startServer({ name: 'sqlite' });
    const sso = await post(`${source.url}/admin/users`, { username: 'director', email: 'director@example.com', external: true }, admin);
    assert.equal(sso.status, 201, sso.text);
    // The old service holds a "director" too, whose password the attacker knows.
    await createUser(old, { username: 'director', email: 'someone@example.com', password: 'attacker-knows-this' });
    target = await startServer({ name: 'sqlite' }, { LATCHKEY_MIGRATE_FROM: `roypi+${old.url}` });
  });
  after(async () => {
    await target.close();
    await old.close();
    await source.close();
  });

  it('the imported SSO user stays external and is never migrated', async () => {
    const rows: string[] = [];
    for await (const row of source.core.transfer.exportUsers({ withHashes: true })) rows.push(JSON.stringify(row));
    const imported = await call(`${target.url}/admin/users/import`, { body: rows.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });
    assert.equal(imported.body.imported, 1, imported.text);
    const login = await post(`${target.url}/auth/access_token/`, { username: 'director', password: 'attacker-knows-this' });
    const after = await call(`${target.url}/admin/users/director`, { headers: admin });
    assert.deepEqual(
      { login: login.status, managed_by: after.body.managed_by },
      { login: 400, managed_by: 'external' },
      `login ${login.status} ${login.text.slice(0, 60)}; user after: ${after.text}`,
    );
  });
});
