// Tallies in Redis, shared by every instance: the Lua scripts that count atomically, the fallback
// to the store's tallies while Redis fails (and the merge of what they counted meanwhile), and
// the connection at start. The only module that imports ioredis.
import { Redis } from 'ioredis';
import { limitsOn, type Limits, type StoreTallies, type Tally, type TallyStore } from './limits.ts';

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

/** The lines the limits log at start and when Redis goes and comes back (pino's shape). */
export interface LimitsLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface RedisLimitsOptions {
  /** REDIS_URL. */
  url: string;
  /** LATCHKEY_REDIS_PREFIX: the start of every key, so deployments can share one Redis. */
  prefix: string;
  /** LATCHKEY_REDIS_TIMEOUT_MS: the deadline of every Redis call, the connection at start included. */
  timeoutMs: number;
  /** The store's tallies: where durable rules count, and every rule while Redis fails. Closed with the limits. */
  tallies: StoreTallies & { close(): Promise<void> };
  clock: () => number;
  log: LimitsLog;
  /** Whether to say at start where the limits count (a cluster worker's primary said it already). */
  announce: boolean;
  /** The URL as the log may name it: without credentials. */
  where: string;
  /**
   * Why a connection failed, in words, or undefined when it was not a network failure. Passed in
   * (src/app/startup-errors.ts has it) so that limits/ imports nothing above the store.
   */
  networkReason: (error: unknown) => string | undefined;
}

/**
 * Limits shared through Redis. Redis down or hung at start is not fatal, as it is not later: the
 * limits count in the store meanwhile (lockouts always do), the log says so, and /ready says
 * degraded. Every Redis call, the connection at start included, has LATCHKEY_REDIS_TIMEOUT_MS.
 */
export async function openRedisLimits(options: RedisLimitsOptions): Promise<Limits> {
  const { tallies, clock, log, where, timeoutMs, networkReason } = options;
  // No offline queue and no retries: while Redis is down a command fails at once; while it hangs,
  // at its deadline. Either way the limits count in the store, and the login does not wait.
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  let lastError: unknown;
  client.on('error', (err) => (lastError = err));
  const why = (error: unknown) =>
    /timed out/i.test((error as Error)?.message ?? '') ? `no answer within ${timeoutMs} ms` : (networkReason(error) ?? (error as Error)?.message ?? String(error));
  const redis = redisTallies(client, options.prefix, tallies, {
    clock,
    probeMs: Math.max(timeoutMs, 1_000),
    onChange(up, error) {
      if (up) log.info({ redis: where }, `redis at ${where} is back; limits are counted there again`);
      else log.warn({ redis: where, err: why(error) }, `REDIS_URL: ${where} does not answer (${why(error)}); limits count in the store until it does`);
    },
  });
  const limits = limitsOn(redis, 'redis', clock, {
    durable: tallies,
    degraded: () => (redis.up ? undefined : `REDIS_URL: ${where} does not answer; limits count in the store`),
    async close() {
      redis.stop();
      client.disconnect();
      await tallies.close();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    // connectTimeout covers the TCP connection only; a port that accepts and never answers
    // would hold the start at Redis's first command.
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('Connection timed out')), timeoutMs))),
    ]);
    redis.start(true);
    if (options.announce) log.info({ limits: 'redis', redis: where }, `limits: shared through Redis at ${where}`);
  } catch (error) {
    redis.start(false);
    const reason = networkReason(lastError) ?? why(error);
    log.warn({ limits: 'store', redis: where, err: reason }, `REDIS_URL: cannot reach ${where}: ${reason}; limits count in the store until Redis answers (retrying)`);
  } finally {
    clearTimeout(timer);
  }
  return limits;
}
