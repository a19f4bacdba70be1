// Attack review (issue 12, item 5): the import checks a `password` row against a user's current
// hash to tell whether it changed, through the login's gate for costly hashes (1 at a time, 16
// waiting). A batch plans all its rows at once, so an import that updates more than 17 users who
// still have an imported (non-native) hash overflows the gate by itself: the whole import stops
// with 400 rate_limited ("Too many sign-ins...") after writing what came before. No attacker
// needed; cheap bcrypt-4 hashes are enough.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, startServer, call, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/x-ndjson' };
const BCRYPT_4 = '$2b$04$GJTZyOlTWfK.ZoZUP1JiuOYq4y.2R5aD/RR8WIsLPK0edpPpFPUEK'; // of old-password-1

describe('attack: an import updating many imported users', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: 'sqlite' });
    const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ username: `u${i}`, password_hash: BCRYPT_4 }));
    const first = await call(`${server.url}/admin/users/import`, { body: rows.join('\n'), headers: admin });
    assert.equal(first.body.imported, 40, first.text);
  });
  after(() => server.close());

  it('sets every new password, whatever the gate for logins holds', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ username: `u${i}`, password: 'new-password-123' }));
    const reply = await call(`${server.url}/admin/users/import?update=true`, { body: rows.join('\n'), headers: admin });
    assert.deepEqual([reply.status, reply.body?.updated], [200, 40], reply.text);
  });
});
