// Attack review (issue 12, item 5; INVARIANTS.md 8 and 9): the gate for costly foreign-hash checks
// is one budget for every account. One client address, within every default limit (60 requests a
// minute, 5 failures per account and address), fills it with wrong guesses against imported users,
// and a different user's correct login from another address is refused: the attacker spends the
// victim's budget.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ADMIN_TOKEN, startServer, call, type TestServer } from './helpers.ts';
import { DEFAULT_FOREIGN_HASH_PER_CLIENT as SHARE } from '../src/domain/foreign-hash-cost.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
// About 19.6 default argon2id checks: under the default cap of 20, as Django's own exports are.
const ITERATIONS = 1_400_000;
const django = (password: string, salt: string) =>
  `pbkdf2_sha256$${ITERATIONS}$${salt}$${crypto.pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256').toString('base64')}`;

describe('attack: the costly-hash gate is the victim\'s budget too', () => {
  let server: TestServer;
  before(async () => {
    // The defaults (the helper raises the per-IP limit for other suites), behind one trusted proxy.
    server = await startServer({ name: 'sqlite' }, { LATCHKEY_IP_RATE_LIMIT: '60', LATCHKEY_TRUST_PROXY: 'true' });
    const other = `pbkdf2_sha256$${ITERATIONS}$othersalt$${Buffer.alloc(32, 7).toString('base64')}`;
    const rows = [JSON.stringify({ username: 'victim', password_hash: django('victim-password-1', 'victimsalt') })];
    for (let i = 0; i < 40; i++) rows.push(JSON.stringify({ username: `imported-${i}`, password_hash: other }));
    const reply = await call(`${server.url}/admin/users/import`, { body: rows.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });
    assert.equal(reply.body.imported, 41, reply.text);
  });
  after(() => server.close());

  const gate = () => server.core.hashGate.stats();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Costly checks that have reached the gate: refused, run, running or waiting. */
  const reached = (s = gate()) => s.refused + s.checked + s.running + s.waiting;
  /** Waits until the storm is at its fullest: every guess has reached the gate (and was let in, or turned away). */
  async function stormAtFull(reachedBefore: number, guesses: number) {
    const full = Date.now() + 60_000;
    while (reached() - reachedBefore < guesses && Date.now() < full) await sleep(10);
  }

  it('a correct login of an imported user is not refused because one other address guesses at other accounts', async () => {
    const attacker = { 'x-forwarded-for': '203.0.113.66' };
    const reachedBefore = reached();
    // 40 wrong guesses, one per account (never near the per-account lockout), from one address.
    const storm = Array.from({ length: 40 }, (_, i) =>
      call(`${server.url}/v1/login`, { json: { username: `imported-${i}`, password: 'wrong-guess' }, headers: attacker }),
    );
    await stormAtFull(reachedBefore, 40);
    const victim = await call(`${server.url}/v1/login`, { json: { username: 'victim', password: 'victim-password-1' }, headers: { 'x-forwarded-for': '198.51.100.7' } });
    const statuses = (await Promise.all(storm)).map((r) => r.status);
    // The attacker's own answers: 401s, and 429s for the guesses the full gate turned away.
    assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join(','));
    assert.equal(victim.status, 200, `victim's correct login: ${victim.status} ${victim.text}`);
  });

  // INVARIANTS.md 10: while the gate is full, a name with an imported hash answers 429 and an
  // unknown name 401, so the answer tells who exists (and who has not logged in since the import).
  it('while the gate is full, an imported user and an unknown name get the same answer', async () => {
    const attacker = { 'x-forwarded-for': '203.0.113.77' };
    const reachedBefore = reached();
    const storm = Array.from({ length: 40 }, (_, i) =>
      call(`${server.url}/v1/login`, { json: { username: `imported-${i}`, password: 'wrong-guess-2' }, headers: attacker }),
    );
    await stormAtFull(reachedBefore, 40);
    const prober = { 'x-forwarded-for': '192.0.2.9' };
    // 'victim' signed in above, so its hash is native now; 'imported-39' still has its imported one.
    const [known, unknown] = await Promise.all([
      call(`${server.url}/v1/login`, { json: { username: 'imported-39', password: 'a-guess' }, headers: prober }),
      call(`${server.url}/v1/login`, { json: { username: 'nobody-here', password: 'a-guess' }, headers: prober }),
    ]);
    await Promise.all(storm);
    assert.deepEqual([known.status, known.text], [unknown.status, unknown.text]);
  });

  // INVARIANTS.md 9, worse: a login refused at the full gate was already counted as a failure of
  // the account and of its address (counted before the check, cleared only by a pass), so the
  // victim's own retries during a storm lock the victim out of their account for 15 minutes.
  it("the victim's retries refused by a full gate do not lock the victim out once the storm is over", async () => {
    // Only the victim's own client is ever refused for the gate: here a neighbour in the victim's
    // IPv6 /64 (one client to the limits) storms, and fills the share the victim's retries need.
    const victimIp = { 'x-forwarded-for': '2001:db8:42:7::42' };
    const neighbour = { 'x-forwarded-for': '2001:db8:42:7::66' };
    // 20 guesses, not 40: the /64 is one client to the per-IP limit (60 a minute) too, and the
    // guesses that keep its share full and the victim's retries come out of the same budget.
    let guesses = 0;
    const guess = () => call(`${server.url}/v1/login`, { json: { username: `imported-${guesses++ % 40}`, password: 'wrong-guess-3' }, headers: neighbour });
    const reachedBefore = reached();
    const storm = Array.from({ length: 20 }, guess);
    await stormAtFull(reachedBefore, 20);
    const full = Date.now() + 60_000;
    let refused = 0;
    while (refused < 5 && Date.now() < full) {
      if (gate().running + gate().waiting < SHARE) {
        // The neighbour's checks ran out: it guesses again, as a storm would, once its last guess is in.
        const before = reached();
        storm.push(guess());
        while (reached() === before && Date.now() < full) await sleep(5);
        continue;
      }
      // The retries still owed go at once, while the neighbour's share is full.
      const retries = await Promise.all(
        Array.from({ length: 5 - refused }, () => call(`${server.url}/v1/login`, { json: { username: 'victim', password: 'victim-password-1' }, headers: victimIp })),
      );
      // One that slipped in as the share emptied passed and cleared the count: five refusals must follow it.
      if (retries.some((retry) => retry.status === 200)) refused = 0;
      else for (const retry of retries) if (retry.status === 429 && /being checked/.test(retry.text)) refused++;
    }
    assert.equal(refused, 5, 'five retries met the full gate');
    await Promise.all(storm);
    while (gate().running > 0 || gate().waiting > 0) await sleep(50);
    const later = await call(`${server.url}/v1/login`, { json: { username: 'victim', password: 'victim-password-1' }, headers: victimIp });
    assert.equal(later.status, 200, `after the storm: ${later.status} ${later.text}`);
  });
});

// A sibling of the refused-retry lockout: a login of a user awaiting lazy migration asks the old
// service, a check too. From a client at its share it is refused before that, counting nothing
// and asking nobody, as every other login from that client is.
describe("attack: a full share refuses a migrating user's login before the old service is asked", () => {
  let old: TestServer;
  let server: TestServer;
  before(async () => {
    old = await startServer({ name: 'sqlite' });
    await call(`${old.url}/admin/users`, { json: { username: 'mover', email: 'mover@example.com', password: 'mover-password-1' }, headers: admin });
    // Costlier hashes (about 49 checks each, under a raised cap) hold the share for longer than the
    // five retries take to arrive, so none of them slips in between two of the neighbour's checks.
    server = await startServer(
      { name: 'sqlite' },
      { LATCHKEY_IP_RATE_LIMIT: '60', LATCHKEY_TRUST_PROXY: 'true', LATCHKEY_MIGRATE_FROM: `wikimedia+${old.url}`, LATCHKEY_FOREIGN_HASH_MAX_COST: '60' },
    );
    const costly = `pbkdf2_sha256$3500000$othersalt$${Buffer.alloc(32, 7).toString('base64')}`;
    const rows = [JSON.stringify({ username: 'mover', email: 'mover@example.com' })];
    for (let i = 0; i < 40; i++) rows.push(JSON.stringify({ username: `imported-${i}`, password_hash: costly }));
    const reply = await call(`${server.url}/admin/users/import`, { body: rows.join('\n'), headers: { ...admin, 'content-type': 'application/x-ndjson' } });
    assert.equal(reply.body.imported, 41, reply.text);
  });
  after(async () => {
    await server.close();
    await old.close();
  });

  it('five retries refused for the share neither reach the old service nor lock the user out', async () => {
    const gate = () => server.core.hashGate.stats();
    const reached = (s = gate()) => s.refused + s.checked + s.running + s.waiting;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const asked = async () => (await old.core.users.events({ username: 'mover' })).filter((e) => e.kind === 'login').length;
    const moverIp = { 'x-forwarded-for': '2001:db8:43:7::42' };
    const neighbour = { 'x-forwarded-for': '2001:db8:43:7::66' };
    let guesses = 0;
    const guess = () => call(`${server.url}/v1/login`, { json: { username: `imported-${guesses++ % 40}`, password: 'wrong-guess' }, headers: neighbour });
    const storm = [guess(), guess()];
    const full = Date.now() + 60_000;
    let refused = 0;
    while (refused < 5 && Date.now() < full) {
      if (gate().running + gate().waiting < SHARE) {
        const before = reached();
        storm.push(guess());
        while (reached() === before && Date.now() < full) await sleep(5);
        continue;
      }
      const retries = await Promise.all(
        Array.from({ length: 5 - refused }, () => call(`${server.url}/v1/login`, { json: { username: 'mover', password: 'mover-password-1' }, headers: moverIp })),
      );
      if (retries.some((retry) => retry.status === 200)) break;
      for (const retry of retries) if (retry.status === 429 && /being checked/.test(retry.text)) refused++;
    }
    assert.equal(refused, 5, 'five retries met the full share');
    assert.equal(await asked(), 0, 'the old service was not asked');
    await Promise.all(storm);
    while (gate().running > 0 || gate().waiting > 0) await sleep(50);
    const later = await call(`${server.url}/v1/login`, { json: { username: 'mover', password: 'mover-password-1' }, headers: moverIp });
    assert.equal(later.status, 200, `after the storm: ${later.status} ${later.text}`);
    assert.equal(await asked(), 1);
  });
});
