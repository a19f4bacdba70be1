// Durable writes committed together: concurrent refreshes share commits, yet the per-token cap
// stays exact, no answer goes out before its write is durable, and a failed transaction undoes
// only itself.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import { Store } from '../src/store/store.ts';
import { ENGINES, startServer, freshStore, post, call, createUser, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';
import { createUser as insertUser } from '../src/core/credentials.ts';

const PASSWORD = 'group-commit-password';

/** A second, independent connection to the same database: what survives is what it sees. */
function independentReader(store: FreshStore) {
  if (store.env.DATABASE_URL) {
    const pg = postgres(store.env.DATABASE_URL, { max: 1, onnotice: () => {} });
    return {
      refreshCount: async (sid: string) => Number((await pg`select refresh_count from sessions where id = ${sid}`)[0].refresh_count),
      close: () => pg.end(),
    };
  }
  const db = new SQLite(path.join(store.env.LATCHKEY_DATA_DIR, 'latchkey.sqlite'), { readonly: true });
  return {
    refreshCount: async (sid: string) => (db.prepare('select refresh_count from sessions where id = ?').get(sid) as { refresh_count: number }).refresh_count,
    close: async () => db.close(),
  };
}

for (const engine of ENGINES) {
  describe(`group commit on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;

    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, {}, store);
      await createUser(server, { username: 'grace', email: 'grace@example.com', password: PASSWORD });
    });
    after(async () => {
      await server.close();
      await store.drop();
    });

    const login = async () => (await post(`${server.url}/v1/login`, { username: 'grace', password: PASSWORD })).body;
    const sessionId = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid as string;

    it('200 concurrent refreshes of one token: exactly 90 succeed, the rest hit the cap', async () => {
      const { refresh_token, access_token } = await login();
      const replies = await Promise.all(
        Array.from({ length: 200 }, () => post(`${server.url}/v1/token-refresh`, { username: 'grace', refresh_token })),
      );
      const statuses = replies.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 90);
      assert.equal(statuses.filter((s) => s === 429).length, 110);
      for (const reply of replies.filter((r) => r.status === 429)) assert.equal(reply.body.message, 'Refresh tokens limit has been exceeded.');
      const sessions = await call(`${server.url}/admin/users/grace/sessions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const session = sessions.body.sessions.find((s: { id: string }) => s.id === sessionId(access_token));
      assert.equal(session.refreshes, 90);
    });

    it('no refresh is answered before its write is durable: another connection already sees it', async () => {
      const { refresh_token, access_token } = await login();
      const sid = sessionId(access_token);
      const reader = independentReader(store);
      try {
        let answered = 0;
        const seenAtAnswer: [number, number][] = [];
        await Promise.all(
          Array.from({ length: 40 }, async () => {
            const reply = await post(`${server.url}/v1/token-refresh`, { username: 'grace', refresh_token });
            assert.equal(reply.status, 200);
            answered++;
            const mine = answered;
            seenAtAnswer.push([mine, await reader.refreshCount(sid)]);
          }),
        );
        for (const [mine, seen] of seenAtAnswer) assert.ok(seen >= mine, `answer ${mine} went out with only ${seen} refreshes committed`);
        assert.equal(await reader.refreshCount(sid), 40);
      } finally {
        await reader.close();
      }
    });
  });

  describe(`transactions among grouped writes on ${engine.name}`, () => {
    let fresh: FreshStore;
    let store: Store;

    before(async () => {
      fresh = await freshStore(engine);
      store = Store.open({ databaseUrl: fresh.env.DATABASE_URL, dataDir: fresh.env.LATCHKEY_DATA_DIR });
      await store.migrate();
    });
    after(async () => {
      await store.close();
      await fresh.drop();
    });

    const user = (username: string) => ({ username, email: null, password_hash: null, status: 'active' as const, managed_by: 'local' as const, created_at: 1, updated_at: 1, password_changed_at: null });

    it('a transaction that fails undoes only its own writes; a duplicate fails only its own insert', async () => {
      await insertUser(store, user('taken'));
      const outcomes = await Promise.allSettled([
        insertUser(store, user('plain-1')),
        store.transaction(async (tx) => {
          await insertUser(tx, user('in-failed-tx'));
          throw new Error('changed my mind');
        }),
        insertUser(store, user('taken')),
        store.transaction(async (tx) => insertUser(tx, user('in-good-tx'))),
        insertUser(store, user('plain-2')),
      ]);
      assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
      for (const name of ['plain-1', 'plain-2', 'in-good-tx', 'taken']) assert.ok(await store.userByUsername(name), name);
      assert.equal(await store.userByUsername('in-failed-tx'), undefined);
    });
  });
}
