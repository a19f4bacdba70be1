// One unauthenticated login spends bounded work: every stored hash has a cost computed from its
// parameters (in default argon2id checks), a hash over LATCHKEY_FOREIGN_HASH_MAX_COST is refused at
// import with its line and, if one is in the store anyway, fails the login unchecked as a wrong
// password would; a costly hash is checked once per login, and costly checks queue at their own gate.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { ENGINES, startServer, post, userWithStoredHash, type TestServer } from './helpers.ts';
import { loadConfig, ConfigError } from '../src/platform/config.ts';
import { parseHash } from '../src/core/hash-formats.ts';

const b64 = (bytes: number) => crypto.randomBytes(bytes).toString('base64');
const phc = (bytes: number) => crypto.randomBytes(bytes).toString('base64').replace(/=+$/, '');

// The hashes of the attacker's review: each takes many seconds to check, and none is ever run here.
const SCRYPT_HUGE = `$scrypt$ln=20,r=2,p=16$${phc(16)}$${phc(32)}`;
const PBKDF2_HUGE = `pbkdf2_sha1$10000000$salt1234$${b64(64)}`;
const ARGON2_HUGE = `$argon2id$v=19$m=262144,t=16,p=4$${phc(16)}$${phc(32)}`;
const BCRYPT_17 = '$2b$17$' + 'a'.repeat(53);

// 'ﬁ' and full-width digits: NFKC turns them into 'fi' and ASCII digits.
const RAW = 'ﬁne-pass-１２３';
const NFKC = 'fine-pass-123';

describe('the cost of a stored hash', () => {
  it('counts every factor, in default argon2id checks', () => {
    const cost = (stored: string) => (parseHash(stored) as { cost?: number } | undefined)?.cost;
    const near = (value: number | undefined, expected: number) => assert.ok(value !== undefined && Math.abs(value - expected) < 0.05 * expected, `${value} vs ${expected}`);
    near(cost(`$argon2id$v=19$m=19456,t=2,p=1$${phc(16)}$${phc(32)}`), 1);
    near(cost(`$argon2id$v=19$m=65536,t=4,p=1$${phc(16)}$${phc(32)}`), 6.7);
    near(cost(ARGON2_HUGE), 107.8);
    near(cost('$2b$12$' + 'a'.repeat(53)), 17.7);
    near(cost(BCRYPT_17), 565);
    // PBKDF2: iterations times output blocks; SHA-1's 20-byte blocks make 64 bytes four runs.
    near(cost(`pbkdf2_sha256$1000000$salt1234$${b64(32)}`), 14);
    near(cost(`pbkdf2_sha256$1000000$salt1234$${b64(64)}`), 28);
    near(cost(PBKDF2_HUGE), 560);
    // scrypt: N·r·p.
    near(cost(`scrypt$salt1234$16384$8$1$${b64(64)}`), 5);
    near(cost(`scrypt$salt1234$16384$8$4$${b64(64)}`), 20);
    near(cost(SCRYPT_HUGE), 1280);
  });

  it('is a setting with a ceiling it cannot be raised past', () => {
    assert.equal((loadConfig({}) as { foreignHashMaxCost?: number }).foreignHashMaxCost, 20);
    assert.equal((loadConfig({ LATCHKEY_FOREIGN_HASH_MAX_COST: '100' }) as { foreignHashMaxCost?: number }).foreignHashMaxCost, 100);
    for (const raw of ['101', '0', 'lots']) {
      assert.throws(() => loadConfig({ LATCHKEY_FOREIGN_HASH_MAX_COST: raw }), (e: unknown) => e instanceof ConfigError && /LATCHKEY_FOREIGN_HASH_MAX_COST/.test(e.message));
    }
  });
});

for (const engine of ENGINES) {
  describe(`bounded work per login on ${engine.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(engine);
    });
    after(async () => server.close());

    it('refuses rows over the cap at import, each with its line, and takes the rest', async () => {
      const rows = [
        { username: 'fine', password_hash: await bcryptHash('a-fine-password', 10) },
        { username: 'scrypthuge', password_hash: SCRYPT_HUGE },
        { username: 'pbkdf2huge', password_hash: PBKDF2_HUGE },
        { username: 'argon2huge', password_hash: ARGON2_HUGE },
        { username: 'bcrypt17', password_hash: BCRYPT_17 },
      ];
      async function* records() {
        for (const [index, fields] of rows.entries()) yield { line: index + 2, fields };
      }
      const rejects: { line: number; reason: string }[] = [];
      const counts = await server.core.transfer.importUsers(records(), { onReject: (r) => rejects.push(r) });
      assert.equal(counts.imported, 1);
      assert.deepEqual(rejects.map((r) => r.line), [3, 4, 5, 6]);
      for (const reject of rejects) assert.match(reject.reason, /LATCHKEY_FOREIGN_HASH_MAX_COST \(20\)/);
    });

    it('fails a login against a hash over the cap unchecked, as a wrong password, and says why in the trail', async () => {
      // The import refuses it now: a store an older release filled may still hold one.
      const user = await userWithStoredHash(server, { username: 'costly', password_hash: SCRYPT_HUGE, asLeftByAnOlderRelease: true });
      const wrong = await post(`${server.url}/v1/login`, { username: 'costly', password: 'whatever-it-is' });
      const other = await post(`${server.url}/v1/login`, { username: 'nobody-here', password: 'whatever-it-is' });
      assert.equal(wrong.status, 401);
      assert.deepEqual(wrong.body, other.body, 'the answer does not tell a costly hash from an unknown user');
      const events = await server.core.users.events({ id: user.id });
      const failed = events.find((e) => e.kind === 'login_failed');
      assert.equal(failed?.detail, 'hash_over_cost:scrypt:1280');
      assert.ok(!JSON.stringify(events).includes('whatever-it-is'));
    });

    it('checks a costly foreign hash once per login: the raw spelling, as the old system hashed it', async () => {
      // bcrypt 12 costs about 18: two spellings (36) do not fit under the default cap of 20.
      await userWithStoredHash(server, { username: 'rawbcrypt', password_hash: await bcryptHash(RAW, 12) });
      await userWithStoredHash(server, { username: 'nfkcbcrypt', password_hash: await bcryptHash(NFKC, 12) });
      assert.equal((await post(`${server.url}/v1/login`, { username: 'rawbcrypt', password: RAW })).status, 200);
      // Today both spellings were tried, doubling the cost; now only the first one is.
      assert.equal((await post(`${server.url}/v1/login`, { username: 'nfkcbcrypt', password: RAW })).status, 401);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'nfkcbcrypt', password: NFKC })).status, 200);
    });

    it('a cheap foreign hash still gets the fallback spelling, since both fit under the cap', async () => {
      await userWithStoredHash(server, { username: 'cheapbcrypt', password_hash: await bcryptHash(NFKC, 4) });
      assert.equal((await post(`${server.url}/v1/login`, { username: 'cheapbcrypt', password: RAW })).status, 200);
    });
  });
}

describe('the gate for costly hashes', () => {
  it('runs `limit` at once, queues a bounded number, and refuses the rest with rate_limited', async () => {
    const { HashGate } = await import('../src/core/passwords.ts');
    // One client (the anonymous one) with a share of two places: one running, one waiting.
    const gate = new HashGate(1, 2, 10_000);
    let release!: () => void;
    const first = gate.run(() => new Promise<string>((resolve) => (release = () => resolve('first'))));
    const second = gate.run(async () => 'second');
    await assert.rejects(gate.run(async () => 'third'), { code: 'rate_limited' });
    assert.equal(gate.inFlight, 1);
    release();
    assert.deepEqual(await Promise.all([first, second]), ['first', 'second']);
    assert.equal(gate.inFlight, 0);
  });

  it('a waiter gives up at its deadline', async () => {
    const { HashGate } = await import('../src/core/passwords.ts');
    const gate = new HashGate(1, 4, 50);
    let release!: () => void;
    const first = gate.run(() => new Promise<void>((resolve) => (release = resolve)));
    await assert.rejects(gate.run(async () => 'late'), { code: 'rate_limited' });
    release();
    await first;
    assert.equal(await gate.run(async () => 'again'), 'again');
  });

  it('native hashes never queue there: a full gate refuses foreign checks while native ones go on', async () => {
    const { verifyPassword, hashPassword, HashGate } = await import('../src/core/passwords.ts');
    // The storming client holds its one place; the native login is another client's.
    const budget = { maxCost: 20, gate: new HashGate(1, 1, 1_000) };
    const foreign = await bcryptHash('foreign-password', 12);
    const native = await hashPassword('native-password');
    const running = verifyPassword(foreign, 'foreign-password', budget, { client: 'storm' });
    await assert.rejects(verifyPassword(foreign, 'foreign-password', budget, { client: 'storm' }), { code: 'rate_limited' });
    assert.deepEqual(await verifyPassword(native, 'native-password', budget, { client: 'other' }), { ok: true, needsRehash: false });
    assert.equal(budget.gate.inFlight, 1);
    assert.equal((await running).ok, true);
  });

  // INVARIANTS 9: one client's storm is refused itself; another client waits its turn and is served.
  it('each client holds at most its share; a client over it is refused, never another client', async () => {
    const { HashGate } = await import('../src/core/passwords.ts');
    const gate = new HashGate(1, 2, 10_000);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const storm = [gate.run(() => held, 'attacker'), gate.run(async () => 'queued', 'attacker')];
    for (let i = 0; i < 30; i++) await assert.rejects(gate.run(async () => 'more', 'attacker'), { code: 'rate_limited' });
    const victim = gate.run(async () => 'victim', 'victim');
    assert.deepEqual(gate.stats(), { running: 1, waiting: 2, checked: 0, refused: 30 });
    release();
    assert.equal(await victim, 'victim');
    await Promise.all(storm);
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0, checked: 3, refused: 30 });
  });

  // INVARIANTS 10: a client at its share is refused for every name, costly, native or unknown, so
  // the refusal does not tell which names were imported.
  it('a client at its share is refused whatever hash the name has, or none', async () => {
    const { verifyPassword, hashPassword, HashGate } = await import('../src/core/passwords.ts');
    const budget = { maxCost: 20, gate: new HashGate(1, 1, 10_000) };
    const foreign = await bcryptHash('foreign-password', 10);
    const native = await hashPassword('native-password');
    let release!: () => void;
    const held = budget.gate.run(() => new Promise<void>((resolve) => (release = resolve)), 'prober');
    for (const stored of [foreign, native, null]) {
      await assert.rejects(verifyPassword(stored, 'a-guess', budget, { client: 'prober' }), { code: 'rate_limited' });
    }
    release();
    await held;
    for (const stored of [foreign, native, null]) assert.equal((await verifyPassword(stored, 'a-guess', budget, { client: 'prober' })).ok, false);
  });

  // INVARIANTS 9: a login the gate turned away was never checked, so it is never counted as a failure.
  it('the hook that counts an attempt runs only for a check that runs', async () => {
    const { verifyPassword, HashGate } = await import('../src/core/passwords.ts');
    const budget = { maxCost: 20, gate: new HashGate(1, 1, 50) };
    const foreign = await bcryptHash('foreign-password', 10);
    let counted = 0;
    const beforeCheck = async () => void counted++;
    let release!: () => void;
    const held = budget.gate.run(() => new Promise<void>((resolve) => (release = resolve)), 'storm');
    // Refused for its client's share, and timed out waiting for a slot: neither counts.
    await assert.rejects(verifyPassword(foreign, 'foreign-password', budget, { client: 'storm', beforeCheck }), { code: 'rate_limited' });
    await assert.rejects(verifyPassword(foreign, 'foreign-password', budget, { client: 'late', beforeCheck }), { code: 'rate_limited' });
    assert.equal(counted, 0);
    release();
    await held;
    assert.equal((await verifyPassword(foreign, 'foreign-password', budget, { client: 'late', beforeCheck })).ok, true);
    assert.equal(counted, 1);
  });
  // INVARIANTS 9 (review 2): many /64s of one network each within its share must not fill the gate
  // for everyone: a /56 holds at most `networkShare` places, a /48 (an IPv4 /24) twice that.
  it('the clients of one network hold at most its share together; another network is still served', async () => {
    const { HashGate } = await import('../src/core/passwords.ts');
    const { limitKeyOf } = await import('../src/limits/client-key.ts');
    const gate = new HashGate(1, 2, 10_000, 2);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const client = (address: string) => limitKeyOf(address);
    // Two /64s of one /56 take its two places; a third /64 of it is refused though its own share is free.
    const storm = [gate.run(() => held, client('2001:db8:1:1::1')), gate.run(async () => 'queued', client('2001:db8:1:2::1'))];
    await assert.rejects(gate.run(async () => 'more', client('2001:db8:1:3::1')), { code: 'rate_limited' });
    // Another /56 of the same /48 has two more places (the /48's four), then the /48 is full too.
    const sibling = [gate.run(async () => 'a', client('2001:db8:1:100::1')), gate.run(async () => 'b', client('2001:db8:1:200::1'))];
    await assert.rejects(gate.run(async () => 'more', client('2001:db8:1:300::1')), { code: 'rate_limited' });
    // IPv4: the /24 holds four places, whichever addresses ask.
    const v4 = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'].map((ip) => gate.run(async () => ip, client(ip)));
    await assert.rejects(gate.run(async () => 'more', client('192.0.2.5')), { code: 'rate_limited' });
    // Another network entirely waits its turn and is served.
    const victim = gate.run(async () => 'victim', client('2001:db8:2:1::1'));
    assert.deepEqual(gate.stats(), { running: 1, waiting: 8, checked: 0, refused: 3 });
    release();
    assert.equal(await victim, 'victim');
    await Promise.all([...storm, ...sibling, ...v4]);
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0, checked: 9, refused: 3 });
  });

  // INVARIANTS 10 (review 2): while the queue could not clear within the wait, every login is refused
  // alike, whatever the name's hash (or none), before the check: a timeout would refuse only imported names.
  it('while the queue could not clear within the wait, every name is refused alike, from any client', async () => {
    const { verifyPassword, hashPassword, HashGate } = await import('../src/core/passwords.ts');
    const budget = { maxCost: 20, gate: new HashGate(1, 4, 100) };
    const foreign = await bcryptHash('foreign-password', 10);
    const native = await hashPassword('native-password');
    // One check known to take longer than the wait (the sleep is a lower bound): the mean is past it.
    await budget.gate.run(() => new Promise((resolve) => setTimeout(resolve, 250)), 'earlier');
    let release!: () => void;
    const held = budget.gate.run(() => new Promise<void>((resolve) => (release = resolve)), 'storm');
    for (const stored of [foreign, native, null]) {
      await assert.rejects(verifyPassword(stored, 'a-guess', budget, { client: 'fresh' }), { code: 'rate_limited' });
    }
    release();
    await held;
    for (const stored of [foreign, native, null]) assert.equal((await verifyPassword(stored, 'a-guess', budget, { client: 'fresh' })).ok, false);
  });
});
