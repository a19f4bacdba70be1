// What a write may have changed, read off every query the store runs. Caches of sessions,
// users and keys listen here, so no write path (present or future) can forget to tell them:
// a query that touches those tables is seen whatever method issued it.
import type {
  KyselyPlugin,
  OperationNode,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';

/** A session; every session of a user (and the user); or all of a kind when the rows are not known. */
export type Change = { of: 'session'; id: string } | { of: 'user'; id: number } | { of: 'sessions' | 'users' | 'keys' };

export type ChangeListener = (changes: readonly Change[]) => void;

/** Writes that only count or stamp, and change no decision made from a cached row. */
const BOOKKEEPING_COLUMNS: Partial<Record<string, ReadonlySet<string>>> = {
  sessions: new Set(['refresh_count', 'last_used_at']),
};

const WATCHED: Record<string, 'sessions' | 'users' | 'keys'> = { sessions: 'sessions', users: 'users', signing_keys: 'keys' };

type Node = OperationNode & Record<string, any>;

const tableName = (node: Node | undefined): string | undefined => node?.table?.identifier?.name;

/** `column = value` conditions that every row the write touches must meet (ANDed, never ORed). */
function equalities(node: Node | undefined, table: string, found = new Map<string, unknown>()): Map<string, unknown> {
  if (!node) return found;
  if (node.kind === 'WhereNode') return equalities(node.where, table, found);
  if (node.kind === 'ParensNode') return equalities(node.node, table, found);
  if (node.kind === 'AndNode') {
    equalities(node.left, table, found);
    return equalities(node.right, table, found);
  }
  if (
    node.kind === 'BinaryOperationNode' &&
    node.operator?.operator === '=' &&
    node.leftOperand?.kind === 'ReferenceNode' &&
    node.rightOperand?.kind === 'ValueNode' &&
    (node.leftOperand.table === undefined || tableName(node.leftOperand.table) === table)
  ) {
    found.set(node.leftOperand.column?.column?.name, node.rightOperand.value);
  }
  return found;
}

function narrowed(table: string, where: Node | undefined): Change {
  const kind = WATCHED[table];
  const eq = equalities(where, table);
  if (kind === 'sessions' && typeof eq.get('id') === 'string') return { of: 'session', id: eq.get('id') as string };
  const userId = kind === 'sessions' ? eq.get('user_id') : kind === 'users' ? eq.get('id') : undefined;
  if (typeof userId === 'number' || (typeof userId === 'string' && /^\d+$/.test(userId))) return { of: 'user', id: Number(userId) };
  return { of: kind };
}

const WRITE_SQL = /\b(update|delete|insert|replace|drop|alter|truncate)\b/i;

/** The changes one query may make to watched rows; empty for reads and plain inserts. */
export function changesOf(node: RootOperationNode): Change[] {
  const n = node as Node;
  switch (n.kind) {
    case 'UpdateQueryNode': {
      const table = tableName(n.table);
      if (!table || !WATCHED[table]) return table ? [] : [{ of: 'sessions' }, { of: 'users' }, { of: 'keys' }];
      const harmless = BOOKKEEPING_COLUMNS[table];
      const columns: string[] = (n.updates ?? []).map((u: Node) => u.column?.column?.name);
      if (harmless && columns.length > 0 && columns.every((c) => harmless.has(c))) return [];
      return [narrowed(table, n.where)];
    }
    case 'DeleteQueryNode': {
      const tables: string[] = (n.from?.froms ?? []).map((f: Node) => tableName(f));
      return tables.filter((t) => WATCHED[t]).map((t) => narrowed(t, n.where));
    }
    case 'InsertQueryNode': {
      // A new row cannot make a cached one stale; an upsert or REPLACE can.
      const table = tableName(n.into);
      if (!table || !WATCHED[table] || (!n.onConflict && !n.onDuplicateKey && !n.replace)) return [];
      return [{ of: WATCHED[table] }];
    }
    case 'MergeQueryNode':
      return [{ of: 'sessions' }, { of: 'users' }, { of: 'keys' }];
    case 'RawNode': {
      const text = (n.sqlFragments as string[]).join(' ');
      if (!WRITE_SQL.test(text)) return [];
      return Object.entries(WATCHED)
        .filter(([table]) => text.includes(table))
        .map(([, of]) => ({ of }));
    }
    default:
      return [];
  }
}

/**
 * A Kysely plugin that hands each successful write's changes to `sink` once the statement has
 * run. Writes that touched no row change nothing.
 */
export class ChangeTracker implements KyselyPlugin {
  private readonly seen = new WeakMap<object, Change[]>();

  constructor(private readonly sink: (changes: Change[]) => void) {}

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    const changes = changesOf(node);
    if (changes.length > 0) this.seen.set(queryId, changes);
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const changes = this.seen.get(queryId);
    if (changes) {
      this.seen.delete(queryId);
      const untouched = result.numAffectedRows === 0n && (result.rows?.length ?? 0) === 0;
      if (!untouched) this.sink(changes);
    }
    return result;
  }
}

/** Where the store announces committed changes: to this process at once, and to peers. */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener in this process; the store forwards local changes to other instances. */
  emit(changes: readonly Change[]): void {
    if (changes.length === 0) return;
    for (const listener of this.listeners) listener(changes);
  }
}

/** Everything may have changed: what a peer's unknown write, or a lost connection, means. */
export const EVERYTHING: readonly Change[] = [{ of: 'sessions' }, { of: 'users' }, { of: 'keys' }];
