// Query plans of what a piece of code runs, for BENCHMARKS.md and the test that keeps the hot
// paths off full scans (test/query-plans.test.ts).
import {
  CompiledQuery,
  type Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';
import type { Engine } from './migrations.ts';

/** Keeps every query built through it (src/store/prepared.ts builds its queries in full when it sees one). */
export class QueryRecorder implements KyselyPlugin {
  readonly nodes: RootOperationNode[] = [];

  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    this.nodes.push(node);
    return node;
  }

  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result;
  }
}

export interface QueryPlan {
  sql: string;
  /** One line per plan node: SQLite's EXPLAIN QUERY PLAN details, PostgreSQL's EXPLAIN lines. */
  plan: string[];
}

/**
 * Runs `fn` (for real) on a copy of `db` that records every query, then asks the engine for
 * the plan of each, with the parameters it ran with. Explained afterwards, not in between, so a
 * transaction inside `fn` never waits on an EXPLAIN that waits on it.
 */
export async function explainQueries<DB>(db: Kysely<DB>, engine: Engine, fn: (watched: Kysely<DB>) => Promise<unknown>): Promise<QueryPlan[]> {
  const recorder = new QueryRecorder();
  await fn(db.withPlugin(recorder));
  const plans: QueryPlan[] = [];
  for (const node of recorder.nodes) {
    const compiled = db.getExecutor().compileQuery(node, { queryId: 'explain' });
    const prefix = engine === 'sqlite' ? 'explain query plan ' : 'explain ';
    const { rows } = await db.executeQuery(CompiledQuery.raw(prefix + compiled.sql, [...compiled.parameters]));
    plans.push({ sql: compiled.sql, plan: (rows as Record<string, unknown>[]).map((row) => String(row.detail ?? row['QUERY PLAN'])) });
  }
  return plans;
}
