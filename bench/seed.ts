// A large store for the bench (`npm run bench -- --users N`) and the query-plan test: N users
// and 2N sessions that look like production's, written in bulk through the store's multi-row
// inserts (the path `latchkey users import` uses), many batches to a transaction.
//
// Users are user1 … userN (user<i>@example.com, id i), all with one precomputed argon2id hash:
// nothing here measures hashing, and any of them can log in with the password it was made from.
// Each user has two sessions, as after two logins: the first a /v1 one (a refresh token, its
// digest stored, some refreshes counted), the second a Roypi or Ziik one; each opened within its
// API's lifetime so it is still live, one in ten revoked, each with the audit event of its login.
import crypto from 'node:crypto';
import type { Store } from '../src/store/store.ts';
import type { Session } from '../src/store/schema.ts';
import { analyze, insertAuditEvents, insertSessions } from '../src/store/diagnostics.ts';
import { sha256 } from '../src/core/secrets.ts';
import { createUsers } from '../src/core/credentials.ts';
import { loadConfig } from '../src/platform/config.ts';
import { profiles } from '../src/core/profiles.ts';

/** Rows per multi-row insert (SQLite allows 32,766 parameters, PostgreSQL 65,535: 1,000 × 11 fits). */
const BATCH = 1000;
/** Users per transaction: one commit, one fsync, for this many users and their sessions. */
const PER_TRANSACTION = 10_000;
const DAY = 86_400_000;

/** A seeded user whose password is known, with a live /v1 session whose refresh token is known. */
export interface SeededLogin {
  username: string;
  email: string;
  refreshToken: string;
  sessionId: string;
  userId: number;
}

export interface SeedOptions {
  users: number;
  /** The argon2id hash every user gets. */
  passwordHash: string;
  /** How many users' live /v1 sessions to hand back, spread evenly over the table. */
  keep: number;
  onProgress?: (done: { users: number; sessions: number }) => void;
  now?: number;
}

/** Seeds a fresh, migrated store; returns `keep` logins spread over it. */
export async function seedStore(store: Store, options: SeedOptions): Promise<SeededLogin[]> {
  const now = options.now ?? Date.now();
  const lifetimes = profiles(loadConfig({}));
  const stride = Math.max(1, Math.floor(options.users / Math.max(1, options.keep)));
  const kept: SeededLogin[] = [];
  let sessions = 0;
  const random = (below: number) => Math.floor(Math.random() * below);

  for (let first = 1; first <= options.users; first += PER_TRANSACTION) {
    const last = Math.min(options.users, first + PER_TRANSACTION - 1);
    await store.transaction(async (tx) => {
      for (let from = first; from <= last; from += BATCH) {
        const to = Math.min(last, from + BATCH - 1);
        const users = [];
        const rows: Session[] = [];
        for (let id = from; id <= to; id++) {
          const createdAt = now - 365 * DAY + random(300 * DAY);
          users.push({
            id,
            username: `user${id}`,
            email: `user${id}@example.com`,
            password_hash: options.passwordHash,
            status: 'active' as const,
            managed_by: 'local' as const,
            created_at: createdAt,
            updated_at: createdAt,
            password_changed_at: createdAt,
          });
          const keep = id % stride === 0 && kept.length < options.keep;
          for (const dialect of ['wikimedia', id % 2 ? 'roypi' : 'ziik'] as const) {
            const ttl = lifetimes[dialect].sessionTtl * 1000;
            const opened = now - random(Math.floor(ttl * 0.9));
            const refreshToken = dialect === 'wikimedia' ? crypto.randomBytes(32).toString('base64url') : undefined;
            const session: Session = {
              id: crypto.randomUUID(),
              user_id: id,
              refresh_token_hash: refreshToken ? sha256(refreshToken) : null,
              dialect,
              refresh_count: refreshToken && !keep ? random(90) : 0,
              created_at: opened,
              expires_at: opened + ttl,
              revoked_at: !keep && random(10) === 0 ? opened + random(now - opened) : null,
              last_used_at: opened + random(now - opened),
              ip: `10.${random(256)}.${random(256)}.${random(256)}`,
              user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
            };
            rows.push(session);
            if (keep && refreshToken) kept.push({ username: `user${id}`, email: `user${id}@example.com`, refreshToken, sessionId: session.id, userId: id });
          }
        }
        await createUsers(tx, users);
        await insertSessions(tx, rows);
        await insertAuditEvents(tx, rows.map((s) => ({ at: s.created_at, user_id: s.user_id, kind: 'login', ip: s.ip, detail: s.dialect })));
        sessions += rows.length;
      }
    });
    options.onProgress?.({ users: last, sessions });
  }
  // Users came with their own ids: PostgreSQL's identity must move past them.
  await store.syncUserIds();
  await analyze(store);
  return kept;
}
