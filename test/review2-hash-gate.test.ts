// Review 2 of the costly-hash gate (INVARIANTS 9 and 10). The gate refuses a client at its own
// share, but a client under its share still waits behind every other client's places, at most
// waitMs (5 s). Many clients (many /64s of one /48, each within every limit and its own share)
// fill the queue past that wait, so:
// - a prober from a fresh address gets 429 for a name with an imported hash and 401 for an
//   unknown name (the answer tells who exists and who has not signed in since the import);
// - a victim's correct login from a fresh address is refused (the attackers spend its budget).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ADMIN_TOKEN, startServer, call, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const ITERATIONS = 1_400_000; // about 19.6 default argon2id checks: under the default cap of 20
const django = (password: string, salt: string) =>
  `pbkdf2_sha256$${ITERATIONS}$${salt}$${crypto.pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256').toString('base64')}`;
const CLIENTS = 30; // /64s of one /48, two guesses each (the default share)

describe('review2: many clients, each within its share, fill the costly-hash gate', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: 'sqlite' }, { LATCHKEY_IP_RATE_LIMIT: '60', LATCHKEY_TRUST_PROXY: 'true' });
    const other = `pbkdf2_sha256$${ITERATIONS}$othersalt$${Buffer.alloc(32, 7).toString('base64')}`;
    const rows = [JSON.stringify({ username: 'victim', password_hash: django('victim-password-1', 'victimsalt') })];
    for (let i = 0; i < 80; i++) rows.push(JSON.stringify({ username: `imported-${i}`, password_hash: other }));
    const reply = await call(`${server.url}/admin/users/import`, { body: rows.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });
    assert.equal(reply.body.imported, 81, reply.text);
  });
  after(() => server.close());

  const gate = () => server.core.hashGate.stats();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const reached = (s = gate()) => s.refused + s.checked + s.running + s.waiting;
  async function storm(tag: number) {
    const before = reached();
    const guesses: Promise<unknown>[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const headers = { 'x-forwarded-for': `2001:db8:${tag}:${c.toString(16)}::1` };
      for (let g = 0; g < 2; g++) guesses.push(call(`${server.url}/v1/login`, { json: { username: `imported-${(c * 2 + g) % 80}`, password: 'wrong' }, headers }));
    }
    const full = Date.now() + 60_000;
    while (reached() - before < guesses.length && Date.now() < full) await sleep(10);
    return guesses;
  }

  it('an imported name and an unknown name get the same answer from a fresh address', async () => {
    const guesses = await storm(0x66);
    const prober = { 'x-forwarded-for': '192.0.2.9' };
    const [known, unknown] = await Promise.all([
      call(`${server.url}/v1/login`, { json: { username: 'imported-79', password: 'a-guess' }, headers: prober }),
      call(`${server.url}/v1/login`, { json: { username: 'nobody-here', password: 'a-guess' }, headers: prober }),
    ]);
    await Promise.all(guesses);
    assert.deepEqual([known.status, known.text], [unknown.status, unknown.text]);
  });

  it("a victim's correct login from its own address is not refused by other clients' guesses", async () => {
    const guesses = await storm(0x67);
    const victim = await call(`${server.url}/v1/login`, { json: { username: 'victim', password: 'victim-password-1' }, headers: { 'x-forwarded-for': '198.51.100.7' } });
    await Promise.all(guesses);
    assert.equal(victim.status, 200, `victim's correct login: ${victim.status} ${victim.text}`);
  });
});
