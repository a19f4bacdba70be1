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

export interface Rule {
  /** Distinguishes the counters of different rules in the shared tallies. */
  name: string;
  points: number;
  durationSeconds: number;
  /** Once the budget is spent, the count holds this long from that moment (else to the window's end). */
  blockSeconds?: number;
}

export interface Counter {
  /** Counts one event; returns seconds to wait when this event is over the budget, else 0. */
  hit(key: string): Promise<number>;
  /** Seconds to wait when the budget is already spent, else 0; counts nothing. */
  peek(key: string): Promise<number>;
  tally(key: string): Promise<Tally | undefined>;
  reset(key: string, options?: { prefix?: boolean }): Promise<void>;
}

export interface Limits {
  counter(rule: Rule): Counter;
  readonly tallies: TallyStore;
  readonly clock: () => number;
  readonly backend: 'store' | 'redis';
  close(): Promise<void>;
}

/** Whole seconds until `at`, at least 1: what a Retry-After says. */
export const secondsUntil = (at: number, now: number) => Math.max(1, Math.ceil((at - now) / 1000));

export function limitsOn(tallies: TallyStore, backend: Limits['backend'], clock: () => number, close = async () => {}): Limits {
  return {
    tallies,
    clock,
    backend,
    close,
    counter(rule) {
      const key = (k: string) => `${rule.name}:${k}`;
      const windowMs = rule.durationSeconds * 1000;
      return {
        async hit(k) {
          const now = clock();
          const tally = await tallies.add(key(k), windowMs, now);
          if (tally.count === rule.points && rule.blockSeconds) await tallies.hold(key(k), now + rule.blockSeconds * 1000);
          return tally.count > rule.points ? secondsUntil(tally.resetAt, now) : 0;
        },
        async peek(k) {
          const now = clock();
          const tally = await tallies.get(key(k), now);
          return tally && tally.count >= rule.points ? secondsUntil(tally.resetAt, now) : 0;
        },
        tally: (k) => tallies.get(key(k), clock()),
        reset: (k, options) => tallies.delete(key(k), options),
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

type ScriptedRedis = Redis & {
  latchkeyTallyAdd(key: string, now: number, windowMs: number): Promise<[number, number]>;
  latchkeyTallyHold(key: string, until: number, expireMs: number): Promise<number>;
};

const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/** Tallies in Redis, shared by every instance; while Redis fails, `fallback` counts instead. */
export function redisTallies(client: Redis, prefix: string, fallback: TallyStore): TallyStore {
  client.defineCommand('latchkeyTallyAdd', { numberOfKeys: 1, lua: ADD_SCRIPT });
  client.defineCommand('latchkeyTallyHold', { numberOfKeys: 1, lua: HOLD_SCRIPT });
  const redis = client as ScriptedRedis;
  const full = (key: string) => `${prefix}:tally:${key}`;
  const strip = (key: string) => key.slice(`${prefix}:tally:`.length);
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
  // Both sides: a count taken while Redis was down must not be forgotten when it comes back.
  const orFallback = async <T>(primary: () => Promise<T>, secondary: () => Promise<T>): Promise<T> => {
    try {
      return await primary();
    } catch {
      return secondary();
    }
  };
  return {
    add: (key, windowMs, now) =>
      orFallback(
        async () => {
          const [c, r] = await redis.latchkeyTallyAdd(full(key), now, windowMs);
          return { count: Number(c), resetAt: Number(r), lastAt: now };
        },
        () => fallback.add(key, windowMs, now),
      ),
    get: (key, now) => orFallback(() => read(key, now), () => fallback.get(key, now)),
    hold: (key, until) =>
      orFallback(
        async () => void (await redis.latchkeyTallyHold(full(key), until, Math.max(until - Date.now(), 1) + 60_000)),
        () => fallback.hold(key, until),
      ),
    list: (keyPrefix, now) =>
      orFallback(
        async () => {
          const rows = await Promise.all((await keysUnder(keyPrefix)).map(async (k) => ({ key: strip(k), tally: await read(strip(k), now) })));
          return rows.filter((row): row is { key: string; tally: Tally } => row.tally !== undefined);
        },
        () => fallback.list(keyPrefix, now),
      ),
    async delete(key, options) {
      await fallback.delete(key, options);
      // While Redis is down its counts cannot be cleared; they run out with their window.
      await orFallback(
        async () => {
          const keys = options?.prefix ? await keysUnder(key) : [full(key)];
          if (keys.length) await redis.del(...keys);
        },
        async () => {},
      );
    },
    // Redis expires its own keys.
    sweep: (now) => fallback.sweep(now),
  };
}
