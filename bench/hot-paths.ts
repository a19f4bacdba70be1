// Every query on a hot path, as the core issues it (src/core/sessions.ts, guard.ts, index.ts's
// sweep), run for real against a seeded store so each one's plan can be read: `npm run bench --
// --plans` prints them for BENCHMARKS.md, and test/query-plans.test.ts fails on any full scan of
// a large table. A path that gains a query in the core gains a line here.
//
// The change feed runs no query: a write is read off the statement that made it
// (src/store/changes.ts) and reaches other instances by NOTIFY or SQLite's data_version; the
// cache then reloads through the verification query below.
import type { Store } from '../src/store/store.ts';
import type { QueryPlan } from '../src/store/explain.ts';
import type { TallyStore } from '../src/limits/limits.ts';
import { explainTallies } from '../src/limits/sql.ts';
import { explain } from '../src/store/diagnostics.ts';
import { sha256 } from '../src/core/secrets.ts';
import type { SeededLogin } from './seed.ts';

export interface PathPlan extends QueryPlan {
  what: string;
}

/** Tables that grow with the users: a full scan of one of them is a bug at a million users. */
export const LARGE_TABLES = ['users', 'sessions', 'audit_events'];

const DAY = 86_400_000;

/** Runs each hot path's queries on `store` (writes included: use a store made for this) and explains them. */
export async function hotPathPlans(store: Store, login: SeededLogin, now = Date.now()): Promise<PathPlan[]> {
  const newSession = {
    id: `plans-${now}`,
    user_id: login.userId,
    refresh_token_hash: sha256(`plans-${now}`),
    dialect: 'wikimedia',
    refresh_count: 0,
    created_at: now,
    expires_at: now + 90 * DAY,
    revoked_at: null,
    last_used_at: now,
    ip: '10.0.0.1',
    user_agent: null,
  };
  const paths: [string, (s: Store) => Promise<unknown>][] = [
    ['verify: session and user by session id (also the cache reload after a change)', (s) => s.sessionWithUser({ id: login.sessionId })],
    ['verify: user by id, when the session is gone', (s) => s.userById(login.userId)],
    ['refresh, revoke: session and user by refresh-token digest', (s) => s.sessionWithUser({ refreshHash: sha256(login.refreshToken) })],
    ['refresh: count one refresh under the per-token cap (90)', (s) => s.takeRefresh(login.sessionId, 90, now)],
    ['refresh: the session again, when the cap refused', (s) => s.sessionById(login.sessionId)],
    ['login (/v1, /auth): user by username', (s) => s.userByUsername(login.username)],
    ['login (/api): user by email', (s) => s.userByEmail(login.email)],
    [
      'login: open a session while the user is as checked',
      (s) => s.transaction(async (tx) => (await tx.holdUserAt(login.userId, 0)) && tx.insertSession(newSession)),
    ],
    ['login, revoke: audit event', (s) => s.audit({ at: now, userId: login.userId, kind: 'login', ip: '10.0.0.1', detail: 'wikimedia' })],
    ['revoke: end one session', (s) => s.revokeSession(newSession.id, now)],
    ['password change, sign out everywhere, disable: end the user\'s other sessions', (s) => s.revokeUserSessions(login.userId, now, login.sessionId)],
    ['hourly sweep: expired codes, dead sessions, old audit events', (s) => s.deleteExpired({ codesBefore: now, sessionsBefore: now - 91 * DAY, auditBefore: now - 365 * DAY })],
  ];
  const plans: PathPlan[] = [];
  for (const [what, run] of paths) for (const plan of await explain(store, run)) plans.push({ what, ...plan });
  const ipKey = 'login-ip:u:1|10.0.0.1';
  const tallies: [string, (tallies: TallyStore) => Promise<unknown>][] = [
    ['login: count an attempt (limits without Redis)', (t) => t.add(ipKey, 60_000, now)],
    ['login: read a count (limits without Redis)', (t) => t.get(ipKey, now)],
    ['login: clear the counts after a right password', (t) => t.delete(ipKey)],
    ['hourly sweep: ended counts', (t) => t.sweep(now)],
  ];
  for (const [what, run] of tallies) for (const plan of await explainTallies(store, run)) plans.push({ what, ...plan });
  return plans;
}

/**
 * Why a plan is not acceptable for a large table, or undefined: it must not scan one (SQLite
 * `SCAN t`, PostgreSQL `Seq Scan on t`), and a read, update or delete of one must go through an
 * index (SQLite `SEARCH`, PostgreSQL an `Index Cond`).
 */
export function planProblem(plan: PathPlan): string | undefined {
  const tables = LARGE_TABLES.filter((t) => new RegExp(`\\b(from|update|into) "${t}"`).test(plan.sql));
  if (tables.length === 0) return undefined;
  const lines = plan.plan.join('\n');
  const scan = tables.find((t) => new RegExp(`\\bSCAN ${t}\\b|Seq Scan on ${t}\\b`).test(lines));
  if (scan) return `scans ${scan}`;
  if (/^\s*insert\b/i.test(plan.sql)) return undefined;
  if (!/\bSEARCH\b|Index Cond/.test(lines)) return 'uses no index';
  return undefined;
}

/** The plans as Markdown, one section per store. */
export function plansMarkdown(stores: { name: string; plans: PathPlan[] }[]): string {
  return stores
    .map(({ name, plans }) => {
      const items = plans.map((p) => `- ${p.what}: \`${p.sql.replace(/\s+/g, ' ').trim()}\`\n\n  \`\`\`\n  ${(p.plan.length ? p.plan : ['(SQLite shows no plan for an insert)']).join('\n  ')}\n  \`\`\``);
      return `#### ${name}\n\n${items.join('\n')}`;
    })
    .join('\n\n');
}
