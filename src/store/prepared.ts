// Hot-path queries compiled once. Kysely builds and compiles a query's tree on every call; for the
// session lookup of a refresh that was about 20 of its 28 µs of CPU (issue 8), while the SQL is
// the same every time and only the values change. A prepared query is written with the query
// builder like any other; its values are found among the compiled parameters by placeholders.
// Only reads and bookkeeping writes (src/store/changes.ts) may be prepared.
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Engine } from './migrations.ts';
import { QueryRecorder } from './explain.ts';
import { changesOf } from './changes.ts';

const placeholder = (index: number) => `\u0000latchkey-prepared-${index}`;

interface Template<Row> {
  compiled: CompiledQuery<Row>;
  /** For each compiled parameter, the argument it takes, or -1 for a constant of the query. */
  slots: number[];
}

export function prepared<Args extends unknown[], Row>(build: (db: Kysely<any>, ...args: Args) => Compilable<Row>) {
  const templates = new Map<Engine, Template<Row>>();
  const template = (db: Kysely<any>, engine: Engine, arity: number): Template<Row> => {
    let found = templates.get(engine);
    if (!found) {
      const placeholders = Array.from({ length: arity }, (_, i) => placeholder(i)) as Args;
      const compiled = build(db, ...placeholders).compile();
      const slots = compiled.parameters.map((value) => placeholders.indexOf(value));
      if (placeholders.some((p) => !compiled.parameters.includes(p))) throw new Error(`a prepared query must bind each argument once: ${compiled.sql}`);
      // The change tracker reads a write when it is compiled, here only once: a write the verify
      // cache must hear of would announce its first run and none after. Such a write is not prepared.
      if (changesOf(compiled.query).length > 0) throw new Error(`a prepared query may not change what the verify cache holds: ${compiled.sql}`);
      found = { compiled, slots };
      templates.set(engine, found);
    }
    return found;
  };
  return async (db: Kysely<any>, engine: Engine, ...args: Args): Promise<QueryResult<Row>> => {
    // While queries are explained, build them in full: the recorder reads each query as it is built.
    if (db.getExecutor().plugins.some((plugin) => plugin instanceof QueryRecorder)) return db.executeQuery(build(db, ...args));
    const { compiled, slots } = template(db, engine, args.length);
    return db.executeQuery({ ...compiled, parameters: slots.map((slot, i) => (slot < 0 ? compiled.parameters[i] : args[slot])) });
  };
}
