// Keys can be withdrawn: an operator retires a (compromised) signing key now, by the admin API
// or the CLI; from then on no path accepts a token it signed, the JWKS drops it, and if it was
// the signing key a new one signs at once. Keys retired longer ago than their retention are
// never accepted, even while their row is still in the store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeProtectedHeader } from 'jose';
import { PUBLISH_AHEAD_MS, RELOAD_EVERY_MS } from '../src/core/keys.ts';
import { ENGINES, startServer, freshStore, post, call, createUser, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';

const run = promisify(execFile);
const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;
const PASSWORD = 'withdrawal-password';
const INTROSPECTION = 'introspection-token-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

for (const engine of ENGINES) {
  describe(`withdrawing signing keys on ${engine.name}`, () => {
    let store: FreshStore;
    let a: TestServer;
    let b: TestServer;

    before(async () => {
      store = await freshStore(engine);
      const env = { LATCHKEY_INTROSPECTION_TOKEN: INTROSPECTION, LATCHKEY_PUBLIC_URL: 'https://auth.example.test' };
      a = await startServer(engine, env, store);
      b = await startServer(engine, env, store);
      await createUser(a, { username: 'wanda', email: 'wanda@example.com', password: PASSWORD });
    });
    after(async () => {
      await a.close();
      await b.close();
      await store.drop();
    });

    async function tokens(server: TestServer) {
      const v1 = (await post(`${server.url}/v1/login`, { username: 'wanda', password: PASSWORD })).body;
      const roypi = (await post(`${server.url}/auth/access_token/`, { username: 'wanda', password: PASSWORD })).body.access_token;
      const ziik = (await post(`${server.url}/api/authenticate`, { username: 'wanda@example.com', password: PASSWORD })).body[0].jwt;
      return { access: [v1.access_token, roypi, ziik] as string[], refresh: v1.refresh_token as string };
    }

    /** Every verification path's verdict on a token. */
    async function verdicts(server: TestServer, token: string) {
      const replies = await Promise.all([
        call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } }),
        post(`${server.url}/auth/verify_token/`, { token }),
        call(`${server.url}/auth/user/`, { headers: { authorization: `Token ${token}` } }),
        call(`${server.url}/forward-auth`, { headers: { authorization: `Bearer ${token}` } }),
        post(`${server.url}/introspect`, { token }, { authorization: `Bearer ${INTROSPECTION}` }),
      ]);
      const [introspect] = replies.splice(4);
      return [...replies.map((r) => r.status), introspect.body.active ? 200 : 401];
    }
    const ACCEPTED = [200, 200, 200, 200, 200];
    const REFUSED = [401, 400, 401, 401, 401];

    /** Withdrawals this server counted (its metrics), whatever other tests withdrew before. */
    const withdrawals = async (server: TestServer) =>
      Number(/^latchkey_auth_events_total\{kind="key_withdrawn"\} (\d+)$/m.exec((await call(`${server.url}/metrics`)).text)?.[1] ?? 0);

    const jwksKids = async (server: TestServer) =>
      ((await call(`${server.url}/.well-known/jwks.json`)).body.keys as { kid: string }[]).map((k) => k.kid);

    it('withdrawing the signing key by the admin API kills its tokens everywhere and signs with a new key at once', async () => {
      const withdrawnBefore = await withdrawals(a);
      const before = await tokens(a);
      const kid = kidOf(before.access[0]);
      // Warm every cache first: verified once on each instance.
      for (const token of before.access) {
        assert.deepEqual(await verdicts(a, token), ACCEPTED);
        assert.deepEqual(await verdicts(b, token), ACCEPTED);
      }
      const reply = await post(`${a.url}/admin/keys/${kid}/retire`, {}, admin);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.kid, kid);
      assert.notEqual(reply.body.signing_kid, kid);

      for (const token of before.access) assert.deepEqual(await verdicts(a, token), REFUSED);
      assert.ok(!(await jwksKids(a)).includes(kid));
      // The other instance, at the latest after its next key reload.
      b.clock.advance(RELOAD_EVERY_MS / 1000 + 1);
      for (const token of before.access) assert.deepEqual(await verdicts(b, token), REFUSED);
      assert.ok(!(await jwksKids(b)).includes(kid));

      // A new key signs at once, on both instances, and its tokens work everywhere.
      for (const server of [a, b]) {
        const after = await tokens(server);
        for (const token of after.access) {
          assert.equal(kidOf(token), reply.body.signing_kid);
          assert.deepEqual(await verdicts(a, token), ACCEPTED);
          assert.deepEqual(await verdicts(b, token), ACCEPTED);
        }
      }
      // The sessions live on: a /v1 client refreshes into tokens signed by the new key.
      const refreshed = await post(`${b.url}/v1/token-refresh`, { username: 'wanda', refresh_token: before.refresh });
      assert.equal(refreshed.status, 200);
      assert.equal(kidOf(refreshed.body.access_token), reply.body.signing_kid);
      // The operator's trail says so (the event has no user; the metrics count it).
      assert.equal(await withdrawals(a), withdrawnBefore + 1);
      const list = (await call(`${a.url}/admin/keys`, { headers: admin })).body.keys as { kid: string; signing: boolean }[];
      assert.ok(!list.some((k) => k.kid === kid));
      assert.ok(list.some((k) => k.kid === reply.body.signing_kid && k.signing));
    });

    it('withdrawing a retired key that still verifies kills its tokens and leaves the signing key alone', async () => {
      const old = await tokens(a);
      const oldKid = kidOf(old.access[0]);
      const next = await a.core.keys.rotate();
      for (const server of [a, b]) server.clock.advance(PUBLISH_AHEAD_MS / 1000 + 1);
      const fresh = await tokens(a);
      assert.equal(kidOf(fresh.access[0]), next);
      assert.deepEqual(await verdicts(a, old.access[1]), ACCEPTED, 'a rotated key still verifies');
      const reply = await post(`${a.url}/admin/keys/${oldKid}/retire`, {}, admin);
      assert.deepEqual(reply.body, { kid: oldKid, signing_kid: next });
      for (const token of old.access) assert.deepEqual(await verdicts(a, token), REFUSED);
      for (const token of fresh.access) assert.deepEqual(await verdicts(a, token), ACCEPTED);
      assert.deepEqual(await jwksKids(a), [next]);
    });

    it('an unknown kid is a 404, and the admin token is required', async () => {
      const unknown = await post(`${a.url}/admin/keys/no-such-kid/retire`, {}, admin);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error, 'key_not_found');
      assert.equal((await post(`${a.url}/admin/keys/no-such-kid/retire`, {})).status, 401);
    });

    it('`latchkey keys retire <kid> --now` withdraws it from the command line', async () => {
      const before = await tokens(a);
      const kid = kidOf(before.access[0]);
      const cli = (...args: string[]) => run(process.execPath, [CLI, 'keys', ...args], { env: { ...process.env, ...store.env } });
      await assert.rejects(cli('retire', kid), (error: { code: number; stderr: string }) => error.code === 2 && /--now/.test(error.stderr));
      await assert.rejects(cli('retire', 'no-such-kid', '--now'), (error: { code: number; stderr: string }) => error.code === 1 && /key_not_found/.test(error.stderr));
      // A kid may begin with '-' (base64url): it is the kid, not an unknown option (exit 2).
      await assert.rejects(cli('retire', '-no-such-kid', '--now'), (error: { code: number; stderr: string }) => error.code === 1 && /key_not_found/.test(error.stderr));
      const out = JSON.parse((await cli('retire', kid, '--now')).stdout);
      assert.equal(out.kid, kid);
      assert.notEqual(out.signing_kid, kid);
      for (const server of [a, b]) server.clock.advance(RELOAD_EVERY_MS / 1000 + 1);
      for (const server of [a, b]) {
        for (const token of before.access) assert.deepEqual(await verdicts(server, token), REFUSED);
        const after = await tokens(server);
        assert.equal(kidOf(after.access[0]), out.signing_kid);
      }
    });
  });

  describe(`keys past their retention on ${engine.name}`, () => {
    it('a key retired longer ago than its retention verifies nothing, though its row is still there', async () => {
      const store = await freshStore(engine);
      try {
        // A 5-day Roypi token, then the key that signed it retires.
        // One deployment, hence one issuer, across the restart.
        const deployment = { LATCHKEY_PUBLIC_URL: 'https://auth.example.test' };
        const first = await startServer(engine, deployment, store);
        await createUser(first, { username: 'otto', email: 'otto@example.com', password: PASSWORD });
        const token = (await post(`${first.url}/auth/access_token/`, { username: 'otto', password: PASSWORD })).body.access_token;
        await first.core.keys.rotate();
        await first.close();
        // Restarted with every token lifetime at one day, so keys are retained one day.
        const day = '86400';
        const second = await startServer(engine, { ...deployment, LATCHKEY_ROYPI_TOKEN_TTL: day, LATCHKEY_ROYPI_REFRESH_WINDOW: day }, store);
        try {
          const retiredAt = (await second.core.store.listKeys()).find((k) => k.kid === kidOf(token))!.retired_at!;
          const check = () => call(`${second.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
          // To one second before the end of its retention (a day after it retired), then past it.
          second.clock.advance((retiredAt + 86_400_000 - 1000 - second.clock.now()) / 1000);
          const within = await check();
          assert.equal(within.status, 200, 'just within retention: ' + within.text);
          second.clock.advance(2);
          assert.equal((await check()).status, 401, 'just past retention');
          assert.equal((await post(`${second.url}/auth/verify_token/`, { token })).status, 400);
          assert.ok(!(await call(`${second.url}/.well-known/jwks.json`)).body.keys.some((k: { kid: string }) => k.kid === kidOf(token)));
        } finally {
          await second.close();
        }
      } finally {
        await store.drop();
      }
    });
  });
}
