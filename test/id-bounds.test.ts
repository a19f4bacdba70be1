// Ids are exact (INVARIANTS.md 2): tokens carry them as JSON numbers, which JavaScript reads
// exactly only up to 2^53 - 1, so no id above it may ever exist. An import of 2^53 - 1 used to let
// the next accounts be numbered 2^53, 2^53 + 1…, which read back as one id: logging in as one
// opened a session as the other. Both stores.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, ENGINES, startServer, post, call, createUser, decodeJwt, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const MAX = '9007199254740991';

for (const engine of ENGINES) {
  describe(`user ids stay exact on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(() => server.close());

    const importLines = (lines: string[]) =>
      call(`${server.url}/admin/users/import`, { body: lines.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });

    it('import refuses an id outside 1 … 2^53 - 1, or not spelled exactly, naming its line', async () => {
      const reply = await importLines([
        '{"id": "9007199254740992", "username": "over-1"}',
        '{"id": 9007199254740993, "username": "over-2"}',
        '{"id": "0", "username": "zero"}',
        '{"id": "0012", "username": "padded"}',
        '{"id": "1e3", "username": "exponent"}',
        '{"id": -5, "username": "negative"}',
        '{"id": "18446744073709551615", "username": "sixty-four"}',
      ]);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.imported, 0, reply.text);
      assert.deepEqual(reply.body.rejects.map((r: { line: number }) => r.line), [1, 2, 3, 4, 5, 6, 7]);
      assert.match(reply.body.rejects[0].reason, /9007199254740991/);
    });

    it('import reads a JSON id as written: a fraction or exponent is refused even where float rounding makes it whole', async () => {
      // 9007199254740990.5 parses to 9007199254740990 in JavaScript, 1.0000000000000001 to 1, 5e0 to 5:
      // accepted, a fractional id would land on a whole one the row never named.
      const reply = await importLines([
        '{"id": 9007199254740990.5, "username": "frac-near-max"}',
        '{"id": 9007199254740991.5, "username": "frac-over-max"}',
        '{"id": 1.0000000000000001, "username": "frac-one"}',
        '{"id": 5e0, "username": "exp-five"}',
        '{"id": 7.0, "username": "seven-point-zero"}',
        '{"id": 1.5, "username": "one-and-a-half"}',
        '{"id": -0, "username": "minus-zero"}',
        '{"username": "ordinary", "id": 12}',
      ]);
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.body.rejects.map((r: { line: number }) => r.line), [1, 2, 3, 4, 5, 6, 7], reply.text);
      assert.equal(reply.body.imported, 1, reply.text);
      for (const { reason } of reply.body.rejects) assert.match(reason, /^id must be a whole number/);
      for (const id of ['9007199254740990', '1', '5', '7']) assert.equal((await call(`${server.url}/admin/user-ids/${id}`, { headers: admin })).status, 404, id);
    });

    it('after an import of 2^53 - 1, no new account can take an id that reads back as another', async () => {
      const imported = await importLines([`{"id": ${MAX}, "username": "victim", "email": "victim@example.com", "password": "victim-password-1"}`]);
      assert.equal(imported.body.imported, 1, imported.text);
      const made: number[] = [];
      for (const name of ['attacker', 'attacker-2']) {
        const reply = await post(`${server.url}/admin/users`, { username: name, email: `${name}@example.com`, password: 'attacker-password-1' }, admin);
        assert.ok(reply.status < 500, `${reply.status} ${reply.text}`);
        if (reply.status === 201) made.push(reply.body.id);
        else assert.deepEqual([reply.status, reply.body.error], [409, 'ids_exhausted'], reply.text);
      }
      for (const id of made) assert.ok(Number.isSafeInteger(id) && id <= Number.MAX_SAFE_INTEGER, `handed out id ${id}`);
      // Whoever does exist logs in as themselves, never as the victim.
      for (const name of ['attacker', 'attacker-2']) {
        const login = await post(`${server.url}/v1/login`, { username: name, password: 'attacker-password-1' });
        if (login.status !== 200) continue;
        const info = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${login.body.access_token}` } });
        assert.equal(info.body.username ?? info.body.preferred_username, name, info.text);
      }
      const victim = await post(`${server.url}/v1/login`, { username: 'victim', password: 'victim-password-1' });
      assert.equal(decodeJwt(victim.body.access_token).sub, MAX);
      // The largest id is addressable in the admin API (a 16-digit id was refused as a path before).
      const byId = await call(`${server.url}/admin/user-ids/${MAX}`, { headers: admin });
      assert.deepEqual([byId.status, byId.body.username], [200, 'victim'], byId.text);
      assert.equal((await call(`${server.url}/admin/user-ids/9007199254740992`, { headers: admin })).status, 400);
      const page = await call(`${server.url}/admin/users?after=9007199254740990`, { headers: admin });
      assert.deepEqual([page.status, page.body.users.map((u: { id: number }) => u.id)], [200, [Number(MAX)]], page.text);
      assert.equal((await call(`${server.url}/admin/users?after=9007199254740992`, { headers: admin })).status, 400);
    });

    it('an ordinary account is still numbered as before', async () => {
      const other = await startServer(engine);
      try {
        const user = await createUser(other, { username: 'plain', email: 'plain@example.com', password: 'plain-password-1' });
        assert.ok(Number.isSafeInteger(user.id) && user.id >= 1);
      } finally {
        await other.close();
      }
    });
  });
}
