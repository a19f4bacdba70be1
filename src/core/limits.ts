// Rate limits and lockout. In memory for one instance; in Redis when REDIS_URL is set,
// so every instance counts against the same budget.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

export interface Rule {
  /** Distinguishes the counters of different rules in a shared store. */
  name: string;
  points: number;
  durationSeconds: number;
  /** Once exhausted, refuse for this long (defaults to the rest of the window). */
  blockSeconds?: number;
}

export interface Counter {
  /** Counts one event; returns seconds to wait when the budget was already spent, else 0. */
  hit(key: string): Promise<number>;
  reset(key: string): Promise<void>;
}

function secondsOf(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

class FlexibleCounter implements Counter {
  constructor(private readonly limiter: RateLimiterAbstract) {}

  async hit(key: string): Promise<number> {
    try {
      await this.limiter.consume(key, 1);
      return 0;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return secondsOf(rejection);
      throw rejection;
    }
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}

export interface Limits {
  counter(rule: Rule): Counter;
  close(): Promise<void>;
  readonly backend: 'memory' | 'redis';
}

const inMemory = (rule: Rule) =>
  new RateLimiterMemory({
    keyPrefix: rule.name,
    points: rule.points,
    duration: rule.durationSeconds,
    blockDuration: rule.blockSeconds ?? 0,
  });

export function memoryLimits(): Limits {
  return {
    backend: 'memory',
    counter: (rule) => new FlexibleCounter(inMemory(rule)),
    close: async () => {},
  };
}

export function redisLimits(client: Redis, prefix = 'latchkey'): Limits {
  return {
    backend: 'redis',
    counter: (rule) =>
      new FlexibleCounter(
        new RateLimiterRedis({
          storeClient: client,
          keyPrefix: `${prefix}:${rule.name}`,
          points: rule.points,
          duration: rule.durationSeconds,
          blockDuration: rule.blockSeconds ?? 0,
          // While Redis is unreachable each instance keeps counting on its own, rather than
          // failing logins (closed) or letting guesses through uncounted (open).
          insuranceLimiter: inMemory(rule),
        }),
      ),
    close: async () => {
      client.disconnect();
    },
  };
}
