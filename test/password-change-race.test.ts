// A password change ends every session, including the ones racing it: logins that checked the
// old password while the change committed must not leave a live session behind. Real concurrency
// over real HTTP, on both stores: several login loops with the old password run while the
// password changes by every path (change-password, admin set-password, temporary password,
// emailed code, emailed link, the admin import), then every token those logins got must fail /userinfo.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startServer, startMailbox, post, call, createUser, ADMIN_TOKEN, type TestServer, type Mailbox } from './helpers.ts';

const OLD = 'old-password-1';
const LOOPS = 6;
const ROUNDS = 2;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface Attempt {
  token?: string;
  /** The login was in flight while the change was: sent before its answer, answered after it was sent. */
  straddled: boolean;
}

for (const engine of ENGINES) {
  describe(`password changes racing logins on ${engine.name}`, () => {
    let server: TestServer;
    let mailbox: Mailbox;
    let straddledTotal = 0;

    before(async () => {
      mailbox = await startMailbox();
      // The lockout would soon stop the loops' failed logins after the change; not what is tested here.
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url, LATCHKEY_LOCKOUT_THRESHOLD: '1000000' });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });

    /** Logs in with OLD through all three APIs, over and over, until stopped; keeps every access token it got. */
    function loginLoops(username: string, email: string, change: { sentAt?: number; answeredAt?: number }) {
      const attempted: Attempt[] = [];
      let stop = false;
      let seq = 0;
      const tick = () => ++seq;
      const attempts = [
        async () => (await post(`${server.url}/v1/login`, { username, password: OLD })).body?.access_token,
        async () => (await post(`${server.url}/auth/access_token/`, { username, password: OLD })).body?.access_token,
        async () => {
          const body = (await post(`${server.url}/api/authenticate`, { username: email, password: OLD })).body;
          return Array.isArray(body) ? body[0].jwt : undefined;
        },
      ];
      const loops = Array.from({ length: LOOPS }, async (_, i) => {
        for (let n = 0; !stop; n++) {
          const sent = tick();
          const token = (await attempts[(i + n) % attempts.length]()) as string | undefined;
          const answered = tick();
          const straddled = change.sentAt !== undefined && answered > change.sentAt && (change.answeredAt === undefined || sent < change.answeredAt);
          attempted.push({ token, straddled });
        }
      });
      return {
        attempted,
        /** Resolves once the loops have minted this many tokens. */
        async warmUp(count: number) {
          while (attempted.filter((a) => a.token).length < count) await new Promise((resolve) => setTimeout(resolve, 5));
        },
        mark: tick,
        async stop() {
          stop = true;
          await Promise.all(loops);
        },
      };
    }

    /**
     * One round: the loops run, `changeIt` changes the password while they do, and afterwards no
     * token any of them got may still work (except `keep`, the caller's own session for change-password).
     */
    async function race(username: string, email: string, changeIt: () => Promise<{ keep?: string; afterwards?: () => Promise<void> }>) {
      for (let round = 0; round < ROUNDS; round++) {
        const reset = await post(`${server.url}/admin/users/${username}/password`, { password: OLD }, admin);
        assert.equal(reset.status, 200, reset.text);
        const change: { sentAt?: number; answeredAt?: number } = {};
        const loops = loginLoops(username, email, change);
        await loops.warmUp(LOOPS);
        change.sentAt = loops.mark();
        const { keep, afterwards } = await changeIt();
        change.answeredAt = loops.mark();
        await loops.stop();
        await afterwards?.();

        const survivors: string[] = [];
        for (const { token, straddled } of loops.attempted) {
          if (straddled) straddledTotal++;
          if (!token || token === keep) continue;
          const reply = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
          if (reply.status !== 401) survivors.push(`${reply.status}${straddled ? ' (in flight during the change)' : ''}`);
        }
        assert.deepEqual(survivors, [], `round ${round}: sessions from old-password logins outlived the change`);
        if (keep) {
          const own = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${keep}` } });
          assert.equal(own.status, 200, 'change-password keeps its own session');
        }
      }
    }

    it('change-password', async () => {
      await createUser(server, { username: 'race-change', email: 'race-change@example.com', password: OLD });
      let next = 0;
      await race('race-change', 'race-change@example.com', async () => {
        const own = (await post(`${server.url}/v1/login`, { username: 'race-change', password: OLD })).body.access_token;
        const reply = await post(`${server.url}/v1/change-password`, {
          access_token: own,
          previous_password: OLD,
          proposed_password: `new-password-${++next}`,
        });
        assert.equal(reply.status, 204, reply.text);
        return { keep: own };
      });
    });

    it('admin set-password, permanent and temporary', async () => {
      await createUser(server, { username: 'race-admin', email: 'race-admin@example.com', password: OLD });
      let next = 0;
      await race('race-admin', 'race-admin@example.com', async () => {
        next++;
        const reply = await post(`${server.url}/admin/users/race-admin/password`, { password: `admin-set-${next}`, temporary: next % 2 === 0 }, admin);
        assert.equal(reply.status, 200, reply.text);
        return {};
      });
    });

    it('reset with an emailed code (/v1) and with an emailed link (/api)', async () => {
      await createUser(server, { username: 'race-reset', email: 'race-reset@example.com', password: OLD });
      let next = 0;
      await race('race-reset', 'race-reset@example.com', async () => {
        next++;
        if (next % 2 === 1) {
          assert.equal((await post(`${server.url}/v1/forgot-password`, { username: 'race-reset' })).status, 204);
          const code = /Confirmation code: (\d{6})/.exec((await mailbox.next('race-reset@example.com')).text ?? '')![1];
          const reply = await post(`${server.url}/v1/forgot-password-confirm`, { username: 'race-reset', password: `reset-${next}-pw`, confirmation_code: code });
          assert.equal(reply.status, 204, reply.text);
        } else {
          assert.equal((await post(`${server.url}/api/password/request`, { email: 'race-reset@example.com' })).status, 204);
          const token = decodeURIComponent(/token=([\w%-]+)/.exec((await mailbox.next('race-reset@example.com')).text ?? '')![1]);
          const reply = await post(`${server.url}/api/password/reset`, {
            token,
            email: 'race-reset@example.com',
            password: `reset-${next}-pw`,
            password_confirm: `reset-${next}-pw`,
          });
          assert.equal(reply.status, 204, reply.text);
        }
        return {};
      });
    });

    it('disable (then enable again)', async () => {
      await createUser(server, { username: 'race-disable', email: 'race-disable@example.com', password: OLD });
      await race('race-disable', 'race-disable@example.com', async () => {
        assert.equal((await post(`${server.url}/admin/users/race-disable/disable`, {}, admin)).status, 200);
        return {
          // Enabled again, a session opened by a login that raced the disable would come back to life.
          afterwards: async () => assert.equal((await post(`${server.url}/admin/users/race-disable/enable`, {}, admin)).status, 200),
        };
      });
    });

    it('challenge sessions from logins racing a new temporary password all die', async () => {
      await createUser(server, { username: 'race-temp', email: 'race-temp@example.com', temporary_password: 'temporary-0' });
      for (let round = 1; round <= ROUNDS; round++) {
        const current = `temporary-${round - 1}`;
        const sessions: string[] = [];
        let stop = false;
        const loops = Array.from({ length: LOOPS }, async () => {
          while (!stop) {
            const reply = await post(`${server.url}/v1/login`, { username: 'race-temp', password: current });
            if (reply.body?.session) sessions.push(reply.body.session);
          }
        });
        while (sessions.length < LOOPS) await new Promise((resolve) => setTimeout(resolve, 5));
        const set = await post(`${server.url}/admin/users/race-temp/password`, { password: `temporary-${round}`, temporary: true }, admin);
        assert.equal(set.status, 200, set.text);
        stop = true;
        await Promise.all(loops);
        const answered: number[] = [];
        for (const session of sessions) {
          const reply = await post(`${server.url}/v1/new-password-required`, { session, username: 'race-temp', new_password: 'chosen-by-user' });
          if (reply.status !== 401) answered.push(reply.status);
        }
        assert.deepEqual(answered, [], `round ${round}: a challenge from the old temporary password was still answerable`);
      }
    });

    /** `POST /admin/users/import?update=true` with one row, which must be counted as updated. */
    async function importUpdate(row: Record<string, unknown>) {
      const reply = await call(`${server.url}/admin/users/import?update=true`, {
        body: JSON.stringify(row),
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
      });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual([reply.body.updated, reply.body.rejected], [1, 0], reply.text);
    }

    it('an import (?update=true) changing the password, or disabling', async () => {
      await createUser(server, { username: 'race-import', email: 'race-import@example.com', password: OLD });
      let next = 0;
      await race('race-import', 'race-import@example.com', async () => {
        next++;
        if (next % 2 === 1) {
          await importUpdate({ username: 'race-import', password: `imported-${next}-pw` });
          return {};
        }
        await importUpdate({ username: 'race-import', status: 'disabled' });
        return { afterwards: async () => importUpdate({ username: 'race-import', status: 'active' }) };
      });
    });

    it('challenge sessions from logins racing an imported password all die', async () => {
      await createUser(server, { username: 'race-import-temp', email: 'race-import-temp@example.com', temporary_password: 'temporary-0' });
      for (let round = 1; round <= ROUNDS; round++) {
        const current = `temporary-${round - 1}`;
        const sessions: string[] = [];
        let stop = false;
        const loops = Array.from({ length: LOOPS }, async () => {
          while (!stop) {
            const reply = await post(`${server.url}/v1/login`, { username: 'race-import-temp', password: current });
            if (reply.body?.session) sessions.push(reply.body.session);
          }
        });
        while (sessions.length < LOOPS) await new Promise((resolve) => setTimeout(resolve, 5));
        await importUpdate({ username: 'race-import-temp', password: `temporary-${round}`, status: 'force_change_password' });
        stop = true;
        await Promise.all(loops);
        const answered: number[] = [];
        for (const session of sessions) {
          const reply = await post(`${server.url}/v1/new-password-required`, { session, username: 'race-import-temp', new_password: 'chosen-by-user' });
          if (reply.status !== 401) answered.push(reply.status);
        }
        assert.deepEqual(answered, [], `round ${round}: a challenge from before the import was still answerable`);
      }
    });

    it('refreshes and renewals racing a password change mint nothing that outlives it', async () => {
      await createUser(server, { username: 'race-renew', email: 'race-renew@example.com', password: OLD });
      for (let round = 1; round <= ROUNDS; round++) {
        const v1 = (await post(`${server.url}/v1/login`, { username: 'race-renew', password: round === 1 ? OLD : `renew-${round - 1}-pw` })).body;
        const password = round === 1 ? OLD : `renew-${round - 1}-pw`;
        const roypi = (await post(`${server.url}/auth/access_token/`, { username: 'race-renew', password })).body.access_token;
        const ziik = (await post(`${server.url}/api/authenticate`, { username: 'race-renew@example.com', password })).body[0].jwt;
        const minted: string[] = [];
        let stop = false;
        const renewals = [
          async () => (await post(`${server.url}/v1/token-refresh`, { username: 'race-renew', refresh_token: v1.refresh_token })).body?.access_token,
          async () => (await post(`${server.url}/auth/refresh_token/`, { token: roypi })).body?.token,
          async () => {
            const body = (await call(`${server.url}/api/renew`, { headers: { authorization: `Bearer ${ziik}` } })).body;
            return Array.isArray(body) ? body[0].jwt : undefined;
          },
        ];
        const loops = Array.from({ length: LOOPS }, async (_, i) => {
          for (let n = 0; !stop && n < 25; n++) {
            const token = await renewals[(i + n) % renewals.length]();
            if (token) minted.push(token);
          }
        });
        while (minted.length < LOOPS && !stop) await new Promise((resolve) => setTimeout(resolve, 5));
        const set = await post(`${server.url}/admin/users/race-renew/password`, { password: `renew-${round}-pw` }, admin);
        assert.equal(set.status, 200, set.text);
        stop = true;
        await Promise.all(loops);
        const survivors: number[] = [];
        for (const token of [...minted, v1.access_token, roypi, ziik]) {
          const reply = await call(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
          if (reply.status !== 401) survivors.push(reply.status);
        }
        assert.deepEqual(survivors, [], `round ${round}: a refreshed or renewed token outlived the change`);
      }
    });

    it('the races above were real: logins were in flight during the changes', () => {
      // Without this, a machine too slow or too fast to interleave would pass the tests above vacuously.
      assert.ok(straddledTotal > 0, 'no login overlapped a password change');
    });
  });
}
