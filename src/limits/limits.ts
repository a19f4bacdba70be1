// Counting for rate limits and lockouts: fixed windows of counts per key, judged by the core's
// clock (so tests can move time), kept where every instance and the CLI can see them: the
// store by default (sql.ts), Redis when REDIS_URL is set (redis.ts, falling back to the store
// while it is down). This module is the interface the core counts through, and the counting
// rules, which are pure: it imports nothing, so the core reaches no SQL or Redis through it.

/** One key's count in its current window. Times are epoch milliseconds. */
export interface Tally {
  count: number;
  /** When the window ends and the count starts again from zero. */
  resetAt: number;
  /** When the last event was counted. */
  lastAt: number;
}

/** Where tallies live. Every operation is atomic per key, so racing requests count exactly. */
export interface TallyStore {
  /** Counts one event; a window of windowMs opens at the first event after the last one closed. */
  add(key: string, windowMs: number, now: number): Promise<Tally>;
  /** The running tally, if its window is still open at `now`. */
  get(key: string, now: number): Promise<Tally | undefined>;
  /** Running tallies whose key starts with prefix. */
  list(prefix: string, now: number): Promise<{ key: string; tally: Tally }[]>;
  /** Keeps the key's window open until at least `until`: a lockout lasting from the moment it locks. */
  hold(key: string, until: number): Promise<void>;
  /** Forgets one key, or every key starting with it when prefix is set. */
  delete(key: string, options?: { prefix?: boolean }): Promise<void>;
  /** Drops tallies whose window closed before `now`. */
  sweep(now: number): Promise<void>;
}

/** The store's tallies, which also keep what Redis would have counted while it failed. */
export interface StoreTallies extends TallyStore {
  /** Removes the running tallies under prefix and returns them, atomically: two takers never both get one. */
  take(prefix: string, now: number): Promise<{ key: string; tally: Tally }[]>;
  /** Adds a tally's count into the key's (or starts the key with it, if its window closed). */
  merge(key: string, tally: Tally, now: number): Promise<void>;
}

export interface Rule {
  /** Distinguishes the counters of different rules in the shared tallies. */
  name: string;
  points: number;
  durationSeconds: number;
  /** Once the budget is spent, the count holds this long from that moment (else to the window's end). */
  blockSeconds?: number;
  /**
   * Counted in the store whatever the backend. For lockouts: one (account, IP) budget whether
   * Redis is up, down or back empty (an outage, or a restart that lost its keys), so guesses
   * before and during an outage never add up to two budgets, and a lockout holds through it.
   */
  durable?: boolean;
}

export interface Counter {
  /** Counts one event; returns seconds to wait when this event is over the budget, else 0. */
  hit(key: string): Promise<number>;
  /** Seconds to wait when the budget is already spent, else 0; counts nothing. */
  peek(key: string): Promise<number>;
  tally(key: string): Promise<Tally | undefined>;
  /** Running tallies whose key starts with prefix (keys without the rule's name). */
  list(prefix: string): Promise<{ key: string; tally: Tally }[]>;
  reset(key: string, options?: { prefix?: boolean }): Promise<void>;
}

export interface Limits {
  counter(rule: Rule): Counter;
  /** Where rules count that are not durable: Redis (the store while it fails), or the store. */
  readonly tallies: TallyStore;
  readonly clock: () => number;
  readonly backend: 'store' | 'redis';
  /** Why the limits do not count where they should (Redis unreachable), or undefined. */
  degraded(): string | undefined;
  close(): Promise<void>;
}

/** Whole seconds until `at`, at least 1: what a Retry-After says. */
export const secondsUntil = (at: number, now: number) => Math.max(1, Math.ceil((at - now) / 1000));

export interface LimitsOptions {
  /** Where durable rules count: the store. Without it, `tallies` is the store. */
  durable?: TallyStore;
  degraded?: () => string | undefined;
  close?: () => Promise<void>;
}

export function limitsOn(tallies: TallyStore, backend: Limits['backend'], clock: () => number, options: LimitsOptions = {}): Limits {
  return {
    tallies,
    clock,
    backend,
    degraded: options.degraded ?? (() => undefined),
    close: options.close ?? (async () => {}),
    counter(rule) {
      const where = rule.durable ? (options.durable ?? tallies) : tallies;
      const name = `${rule.name}:`;
      const key = (k: string) => `${name}${k}`;
      const windowMs = rule.durationSeconds * 1000;
      return {
        async hit(k) {
          const now = clock();
          const tally = await where.add(key(k), windowMs, now);
          if (tally.count === rule.points && rule.blockSeconds) await where.hold(key(k), now + rule.blockSeconds * 1000);
          return tally.count > rule.points ? secondsUntil(tally.resetAt, now) : 0;
        },
        async peek(k) {
          const now = clock();
          const tally = await where.get(key(k), now);
          return tally && tally.count >= rule.points ? secondsUntil(tally.resetAt, now) : 0;
        },
        tally: (k) => where.get(key(k), clock()),
        list: async (prefix) => (await where.list(key(prefix), clock())).map((row) => ({ key: row.key.slice(name.length), tally: row.tally })),
        reset: (k, resetOptions) => where.delete(key(k), resetOptions),
      };
    },
  };
}
