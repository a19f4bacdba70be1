// Counting for rate limits and lockouts: fixed windows of counts per key, judged by the core's
// clock (so tests can move time), kept where every instance and the CLI can see them: the
// store by default, Redis when REDIS_URL is set (falling back to the store while it is down).
import type { Redis } from 'ioredis';

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

// The window is judged by the caller's clock, not Redis's, so every instance (and the tests'
// clock) agrees; the key's own expiry only collects garbage, a minute after the window closes.
const ADD_SCRIPT = `
local now = tonumber(ARGV[1])
local t = redis.call('HMGET', KEYS[1], 'c', 'r')
local c = tonumber(t[1])
local r = tonumber(t[2])
if (not c) or (not r) or r <= now then
  c = 1
  r = now + tonumber(ARGV[2])
else
  c = c + 1
end
redis.call('HSET', KEYS[1], 'c', c, 'r', r, 'l', now)
redis.call('PEXPIRE', KEYS[1], math.max(r - now, 1) + 60000)
return {c, r}
`;

const HOLD_SCRIPT = `
local r = tonumber(redis.call('HGET', KEYS[1], 'r'))
local until = tonumber(ARGV[1])
if r and r < until then
  redis.call('HSET', KEYS[1], 'r', until)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1
`;

// Adds a count kept in the store during an outage into Redis's own for the key: the counts of
// both places are one budget.
const MERGE_SCRIPT = `
local now = tonumber(ARGV[1])
local c = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local l = tonumber(ARGV[4])
local t = redis.call('HMGET', KEYS[1], 'c', 'r', 'l')
local oc = tonumber(t[1])
local orr = tonumber(t[2])
local ol = tonumber(t[3])
if oc and orr and orr > now then
  c = c + oc
  if orr > r then r = orr end
  if ol and ol > l then l = ol end
end
redis.call('HSET', KEYS[1], 'c', c, 'r', r, 'l', l)
redis.call('PEXPIRE', KEYS[1], math.max(r - now, 1) + 60000)
return 1
`;

type ScriptedRedis = Redis & {
  latchkeyTallyAdd(key: string, now: number, windowMs: number): Promise<[number, number]>;
  latchkeyTallyHold(key: string, until: number, expireMs: number): Promise<number>;
  latchkeyTallyMerge(key: string, now: number, count: number, resetAt: number, lastAt: number): Promise<number>;
};

const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/** Where the store keeps what Redis would have counted, until Redis answers again. */
const OUTAGE = 'redis-outage:';

export interface RedisTallyOptions {
  /** How often Redis is pinged: to see it fail when no request does, and to see it answer again. */
  probeMs: number;
  /** Told once when Redis stops answering (with the error) and once when it answers again. */
  onChange?: (up: boolean, error?: unknown) => void;
  /** The clock windows are judged by. */
  clock: () => number;
}

export interface RedisTallies extends TallyStore {
  /** Whether counts go to Redis now (else to the store, until a probe finds Redis answering). */
  readonly up: boolean;
  /** Starts counting in Redis (connected) or in the store until Redis answers, and probing it. */
  start(connected: boolean): void;
  stop(): void;
}

/**
 * Tallies in Redis, shared by every instance. The client must give every command a deadline
 * (ioredis commandTimeout, no offline queue): the first command that fails or misses it sends
 * every count to the store until a ping is answered again, so a hung Redis costs one deadline,
 * not one per command. Counts taken in the store meanwhile are then added into Redis's.
 */
export function redisTallies(client: Redis, prefix: string, fallback: StoreTallies, options: RedisTallyOptions): RedisTallies {
  client.defineCommand('latchkeyTallyAdd', { numberOfKeys: 1, lua: ADD_SCRIPT });
  client.defineCommand('latchkeyTallyHold', { numberOfKeys: 1, lua: HOLD_SCRIPT });
  client.defineCommand('latchkeyTallyMerge', { numberOfKeys: 1, lua: MERGE_SCRIPT });
  const redis = client as ScriptedRedis;
  const full = (key: string) => `${prefix}:tally:${key}`;
  const strip = (key: string) => key.slice(`${prefix}:tally:`.length);
  const aside = (key: string) => `${OUTAGE}${key}`;
  const read = async (key: string, now: number): Promise<Tally | undefined> => {
    const [c, r, l] = await redis.hmget(full(key), 'c', 'r', 'l');
    if (c === null || r === null || Number(r) <= now) return undefined;
    return { count: Number(c), resetAt: Number(r), lastAt: Number(l ?? r) };
  };
  const keysUnder = async (keyPrefix: string): Promise<string[]> => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(full(keyPrefix))}*`, 'COUNT', 500);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    return found;
  };

  let up = false;
  /** Whether the last word to onChange (or the start's warning) was that Redis is down. */
  let saidDown = false;
  let probe: NodeJS.Timeout | undefined;
  let probing = false;
  const down = (error: unknown) => {
    if (!up) return;
    up = false;
    saidDown = true;
    options.onChange?.(false, error);
  };
  /** Adds the counts the store kept meanwhile into Redis; any not added go back to the store. */
  const mergeBack = async () => {
    const now = options.clock();
    const rows = await fallback.take(OUTAGE, now);
    for (let i = 0; i < rows.length; i++) {
      const { key, tally } = rows[i];
      try {
        await redis.latchkeyTallyMerge(full(key.slice(OUTAGE.length)), now, tally.count, tally.resetAt, tally.lastAt);
      } catch (error) {
        for (const row of rows.slice(i)) await fallback.merge(row.key, row.tally, now);
        throw error;
      }
    }
  };
  const check = async () => {
    if (probing) return;
    probing = true;
    try {
      await redis.ping();
      if (up) return;
      up = true;
      try {
        await mergeBack();
      } catch {
        // Down again before the counts were all in; the next answered ping tries again.
        up = false;
        return;
      }
      if (saidDown) options.onChange?.(true);
      saidDown = false;
    } catch (error) {
      down(error);
    } finally {
      probing = false;
    }
  };

  // Redis while it answers; the store from the first failure until a ping is answered again.
  const either = async <T>(primary: () => Promise<T>, secondary: () => Promise<T>): Promise<T> => {
    if (!up) return secondary();
    try {
      return await primary();
    } catch (error) {
      down(error);
      return secondary();
    }
  };
  return {
    get up() {
      return up;
    },
    start(connected) {
      saidDown = !connected;
      // Connected: Redis counts at once, and what an earlier run kept aside is added in by the
      // first probe. Not connected: the store counts until a probe is answered.
      up = false;
      if (connected) void check();
      probe ??= setInterval(() => void check(), options.probeMs).unref();
    },
    stop() {
      clearInterval(probe);
      probe = undefined;
    },
    add: (key, windowMs, now) =>
      either(
        async () => {
          const [c, r] = await redis.latchkeyTallyAdd(full(key), now, windowMs);
          return { count: Number(c), resetAt: Number(r), lastAt: now };
        },
        () => fallback.add(aside(key), windowMs, now),
      ),
    get: (key, now) => either(() => read(key, now), () => fallback.get(aside(key), now)),
    hold: (key, until) =>
      either(
        async () => void (await redis.latchkeyTallyHold(full(key), until, Math.max(until - Date.now(), 1) + 60_000)),
        () => fallback.hold(aside(key), until),
      ),
    list: (keyPrefix, now) =>
      either(
        async () => {
          const rows = await Promise.all((await keysUnder(keyPrefix)).map(async (k) => ({ key: strip(k), tally: await read(strip(k), now) })));
          return rows.filter((row): row is { key: string; tally: Tally } => row.tally !== undefined);
        },
        async () => (await fallback.list(aside(keyPrefix), now)).map((row) => ({ key: row.key.slice(OUTAGE.length), tally: row.tally })),
      ),
    async delete(key, deleteOptions) {
      await fallback.delete(aside(key), deleteOptions);
      // While Redis is down its counts cannot be cleared; they run out with their window.
      await either(
        async () => {
          const keys = deleteOptions?.prefix ? await keysUnder(key) : [full(key)];
          if (keys.length) await redis.del(...keys);
        },
        async () => {},
      );
    },
    // Redis expires its own keys; the store's, those kept aside included, are swept.
    sweep: (now) => fallback.sweep(now),
  };
}
