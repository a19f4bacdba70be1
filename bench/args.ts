// The bench's flags (listed at the top of bench/run.ts), read once, with their smoke-run defaults.
import path from 'node:path';
import { parseArgs } from 'node:util';

export const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string' },
    connections: { type: 'string' },
    sessions: { type: 'string' },
    users: { type: 'string' },
    plans: { type: 'boolean' },
    workers: { type: 'string' },
    out: { type: 'string' },
    smoke: { type: 'boolean' },
  },
});
export const SMOKE = args.smoke ?? false;
export const SECONDS = Number(args.seconds ?? process.env.BENCH_SECONDS ?? (SMOKE ? 0.25 : 5));
export const CONNECTIONS = Number(args.connections ?? process.env.BENCH_CONNECTIONS ?? (SMOKE ? 8 : 32));
export const SESSIONS = Number(args.sessions ?? (SMOKE ? 4 : 384));
/** Users seeded before the load (each with two sessions): scenarios must not slow down as this grows. */
export const USERS = Number(args.users ?? 1000);
export const WORKERS = Number(args.workers ?? 1);
if (!Number.isInteger(WORKERS) || WORKERS < 1) throw new Error(`--workers must be a whole number from 1, got ${args.workers}`);
export const OUT = path.resolve(args.out ?? 'BENCHMARKS.md');
export const SVG = OUT.replace(/(\.md)?$/, '.svg');
export const PASSWORD = 'bench-password-123';
