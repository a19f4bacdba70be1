// Other instances on the same store: telling them what this one changed, and hearing what they
// changed, so every instance's caches are true again within a second of a write anywhere.
// PostgreSQL: LISTEN/NOTIFY. SQLite: other processes (the CLI, a second server) are noticed
// through PRAGMA data_version, which moves whenever another connection commits.
import crypto from 'node:crypto';
import type { Connection } from './db.ts';
import { EVERYTHING, type Change, type ChangeFeed } from './changes.ts';

const CHANNEL = 'latchkey_changes';
/** NOTIFY payloads must stay under 8000 bytes; a bigger batch is sent as "everything". */
const MAX_PAYLOAD = 7000;
export const SQLITE_POLL_MS = 250;

export interface Peers {
  /** Sends changes this instance committed to the others. */
  publish(changes: readonly Change[]): void;
  /** Starts hearing the others' changes (servers do; one-shot CLI commands only publish). */
  listen(feed: ChangeFeed): Promise<void>;
  /** Waits for changes still being sent, then stops listening. */
  close(): Promise<void>;
}

export function peersOf(connection: Connection): Peers {
  if (connection.pg) return postgresPeers(connection.pg);
  if (connection.sqlite) return sqlitePeers(connection.sqlite);
  throw new Error('unknown store');
}

function postgresPeers(pg: NonNullable<Connection['pg']>): Peers {
  const self = crypto.randomBytes(8).toString('hex');
  const sending = new Set<Promise<unknown>>();
  let unlisten: (() => Promise<void>) | undefined;
  return {
    publish(changes) {
      let payload = JSON.stringify({ from: self, changes });
      if (payload.length > MAX_PAYLOAD) payload = JSON.stringify({ from: self, changes: EVERYTHING });
      const sent = pg.notify(CHANNEL, payload).catch(() => {
        // Peers that miss this still drop their entries when they reconnect (onlisten below)
        // or when the entries age out.
      });
      sending.add(sent);
      void sent.finally(() => sending.delete(sent));
    },
    async listen(feed) {
      const subscription = await pg.listen(
        CHANNEL,
        (payload) => {
          try {
            const message = JSON.parse(payload) as { from: string; changes: Change[] };
            if (message.from !== self) feed.emit(message.changes);
          } catch {
            feed.emit(EVERYTHING);
          }
        },
        // On every (re)connection: whatever was sent while we were not listening is lost.
        () => feed.emit(EVERYTHING),
      );
      unlisten = subscription.unlisten;
    },
    async close() {
      await Promise.all(sending);
      await unlisten?.().catch(() => {});
    },
  };
}

function sqlitePeers(sqlite: NonNullable<Connection['sqlite']>): Peers {
  let timer: NodeJS.Timeout | undefined;
  return {
    // Peers read the same file and notice the commit through data_version.
    publish() {},
    async listen(feed) {
      let seen = sqlite.pragma('data_version', { simple: true });
      timer = setInterval(() => {
        if (!sqlite.open) return;
        const now = sqlite.pragma('data_version', { simple: true });
        if (now !== seen) {
          seen = now;
          feed.emit(EVERYTHING);
        }
      }, SQLITE_POLL_MS);
      timer.unref();
    },
    async close() {
      clearInterval(timer);
    },
  };
}
