// What only the bench and the tests ask of a store: the query plans of what code runs on it
// (src/store/explain.ts), fresh planner statistics, and bulk inserts for seeding a large store.
// Kept off the Store class, so the production surface is the queries Latchkey makes; no module of
// src/ imports this one (the dependency rule diagnostics-only-for-bench-and-tests).
import { sql, type Insertable, type Kysely } from 'kysely';
import type { AuditEventsTable, Database, Session } from './schema.ts';
import type { DiagnosticsKey, Store } from './store.ts';
import { explainQueries, type QueryPlan } from './explain.ts';

const KEY = Object.freeze({}) as DiagnosticsKey;

/**
 * The query plans of what `fn` runs on the store (it runs for real): the proof that the hot
 * paths use indexes and never scan (BENCHMARKS.md, test/query-plans.test.ts).
 */
export function explain(store: Store, fn: (store: Store) => Promise<unknown>): Promise<QueryPlan[]> {
  const { root, engine, over } = store.internals(KEY);
  return explainQueries(root, engine, (watched) => fn(over(watched)));
}

/**
 * Refreshes the planner's statistics on PostgreSQL, as autovacuum does after a bulk load (done
 * here so plans do not depend on when it wakes). SQLite: nothing, as in production, where
 * Latchkey never runs ANALYZE; its plans must hold without statistics.
 */
export async function analyze(store: Store): Promise<void> {
  const { root, engine } = store.internals(KEY);
  if (engine === 'postgres') await sql`analyze`.execute(root);
}

/** Many sessions in one statement (seeding a large store); in a transaction when `store` is one. */
export async function insertSessions(store: Store, sessions: Session[]): Promise<void> {
  if (sessions.length) await store.internals(KEY).db.insertInto('sessions').values(sessions).execute();
}

/** Many audit events in one statement (seeding a large store); in a transaction when `store` is one. */
export async function insertAuditEvents(store: Store, events: Insertable<AuditEventsTable>[]): Promise<void> {
  if (events.length) await store.internals(KEY).db.insertInto('audit_events').values(events).execute();
}

/** The store's own query builder, for a test's query that no store method makes (a scan, a catalog read). */
export function queryBuilder(store: Store): Kysely<Database> {
  return store.internals(KEY).db as Kysely<Database>;
}
