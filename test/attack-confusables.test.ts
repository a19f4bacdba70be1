// Attack review (issue 12, item 2; INVARIANTS.md 1: "Confusable and invisible characters are refused
// where names and emails are created"). The check refuses mixed scripts (UTS #39 Highly
// Restrictive), but a name in one script that looks like another name is accepted: Latin's dotless
// `ı` (U+0131), Latin alpha `ɑ` (U+0251), small capital `ꜱ` (U+A731), and all-Cyrillic `ѕсоре`.
// Each is a separate account that reads as `admin` / `scope` in any list or token claim.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, startServer, post, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('attack: look-alike names in one script', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: 'sqlite' });
    for (const [username, email] of [['admin', 'admin@example.com'], ['scope', 'scope@example.com']]) {
      const made = await post(`${server.url}/admin/users`, { username, email, password: 'a-long-password-1' }, admin);
      assert.equal(made.status, 201, made.text);
    }
  });
  after(() => server.close());

  for (const [username, email, looksLike] of [
    ['adm\u0131n', 'x1@example.com', 'admin'],
    ['\u0251dmin', 'x2@example.com', 'admin'],
    ['\ua731cope', 'x3@example.com', 'scope'],
    ['\u0455\u0441\u043e\u0440\u0435', 'x4@example.com', 'scope'],
    ['mallory', 'admin@ex\u0251mple.com', 'admin@example.com'],
  ]) {
    it(`${JSON.stringify(username)} / ${JSON.stringify(email)} (looks like ${looksLike}) is refused at creation`, async () => {
      const made = await post(`${server.url}/admin/users`, { username, email, password: 'a-long-password-1' }, admin);
      assert.equal(made.status, 400, made.text);
    });
  }
});
