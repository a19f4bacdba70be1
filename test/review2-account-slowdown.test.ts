// Review 2 of the costly-hash gate against the account-wide slowdown (src/core/guard.ts;
// INVARIANTS 9, issue 12 item 6's sibling): past LATCHKEY_ACCOUNT_SLOWDOWN_AFTER (20) failures
// from everywhere, each further password check of the account waits a growing delay (1 s, 2 s,
// 4 s...). That delay is only peeked in mayCheckPassword, before the login waits at the gate;
// countPasswordCheck, as the check starts, re-checks the per-address lockout but not the account's
// delay. A burst of guesses from many /64s (two each, within every per-address limit) all pass
// the peek while the first ones wait their turn, and every one of them is then checked.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ADMIN_TOKEN, startServer, call, type TestServer } from './helpers.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const ITERATIONS = 100_000; // a cheap foreign hash: the burst is checked well within the gate's wait
const django = (password: string, salt: string) =>
  `pbkdf2_sha256$${ITERATIONS}$${salt}$${crypto.pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256').toString('base64')}`;

describe('review2: the account-wide slowdown during a burst at the costly-hash gate', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ name: 'sqlite' }, { LATCHKEY_IP_RATE_LIMIT: '60', LATCHKEY_TRUST_PROXY: 'true' });
    const reply = await call(`${server.url}/admin/users/import`, {
      body: JSON.stringify({ username: 'target', password_hash: django('target-password-1', 'targetsalt') }),
      headers: { ...admin, 'content-type': 'application/x-ndjson' },
    });
    assert.equal(reply.body.imported, 1, reply.text);
    const native = await call(`${server.url}/admin/users`, { json: { username: 'native', email: 'native@example.com', password: 'native-password-1' }, headers: admin });
    assert.equal(native.status, 201, native.text);
  });
  after(() => server.close());

  for (const [name, tag] of [['target', 0x70], ['native', 0x71]] as const) it(`80 wrong guesses at ${name} (${name === 'target' ? 'imported hash, waits at the gate' : 'native hash'}) from 40 /64s: at most the slowdown threshold and a few delayed ones are checked`, async () => {
    const started = Date.now();
    const guesses = [];
    for (let c = 0; c < 40; c++) {
      const headers = { 'x-forwarded-for': `2001:db8:${tag.toString(16)}:${c.toString(16)}::1` };
      for (let g = 0; g < 2; g++) guesses.push(call(`${server.url}/v1/login`, { json: { username: name, password: `wrong-${c}-${g}` }, headers }));
    }
    const answers = await Promise.all(guesses);
    const seconds = (Date.now() - started) / 1000;
    const checked = answers.filter((a) => a.status === 401).length;
    const slowed = answers.filter((a) => a.status === 429 && /on this account/.test(a.text)).length;
    // 20 failures, then one check after 1 s, 2 s, 4 s, 8 s...: within the burst's seconds, at most log2 more.
    const allowed = 20 + Math.ceil(Math.log2(seconds + 1)) + 1;
    assert.ok(checked <= allowed, `${checked} of 80 guesses checked in ${seconds.toFixed(1)} s (allowed ${allowed}); ${slowed} slowed; statuses ${answers.map((a) => a.status).join(',')}`);
  });
});
