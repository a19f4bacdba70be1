// `npm run bench`: Latchkey's hot paths under load, with yardsticks measured in the same run.
// Machines here are shared and noisy (the same command swings 2x within a minute), so every
// figure is given as a ratio to yardsticks measured right before and right after it: a fastify
// hello-world in its own process, and Latchkey's own GET /health. Logins are compared with raw
// argon2id hashing measured around them. Only 2xx answers count; a scenario whose setup or
// answers are wrong FAILS the run (exit code 1).
//
// Each store is seeded first, in bulk (bench/seed.ts), with --users users and twice as many
// sessions; the bench logs in, refreshes and verifies as some of those users.
//
//   npm run bench [-- --users 1000 --seconds 5 --connections 32 --sessions 384 --workers 1 --out BENCHMARKS.md --smoke]
//   npm run bench -- --users 1000000 --plans   seed, print the hot paths' query plans, no load
//   --workers N starts the server with LATCHKEY_WORKERS=N (a primary and N worker processes, whose
//   memory and CPU are counted together)
//   DATABASE_URL=postgres://… npm run bench     also benches PostgreSQL (in a fresh database)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freshPostgres } from '../test/databases.ts';
import { plansMarkdown, type PathPlan } from './hot-paths.ts';
import { args, OUT, USERS, WORKERS } from './args.ts';
import { Proc } from './server-process.ts';
import { benchStore, seed, type StoreRun } from './scenarios.ts';
import { chart, report, table, writeReport } from './report.ts';

/** Rows name the worker count when there is more than one process serving. */
const workersLabel = WORKERS > 1 ? ` (${WORKERS} workers)` : '';

/** Seeds each store; then benches it, or with --plans prints its hot paths' query plans instead. */
async function main() {
  const started = new Date();
  const load = os.loadavg();
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim() + (process.env.DATABASE_URL ? '   # with DATABASE_URL set' : '');
  const hello = args.plans ? undefined : await Proc.start([path.join('bench', 'hello.mjs')], {}, '/');
  const runs: StoreRun[] = [];
  const plans: { name: string; plans: PathPlan[]; seconds: number }[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const oneStore = async (name: string, storeEnv: Record<string, string>) => {
    console.error(`bench: ${name}, seeding ${USERS.toLocaleString('en')} users and ${(2 * USERS).toLocaleString('en')} sessions`);
    const seeding = await seed(name, storeEnv);
    if (hello) runs.push(await benchStore(`${name}${workersLabel}`, storeEnv, hello, seeding));
    else plans.push({ name, plans: seeding.plans, seconds: seeding.seconds });
  };
  try {
    await oneStore('SQLite', { LATCHKEY_DATA_DIR: dataDir, DATABASE_URL: '' });
    if (process.env.DATABASE_URL) {
      const pg = await freshPostgres(process.env.DATABASE_URL, 'latchkey_bench');
      try {
        await oneStore('PostgreSQL', { LATCHKEY_DATA_DIR: dataDir, DATABASE_URL: pg.url });
      } finally {
        await pg.drop();
      }
    }
  } finally {
    await hello?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  if (!hello) {
    // For BENCHMARKS.md's hand-written section on query plans.
    console.log(`\`${command}\`: ${plans.map((p) => `${p.name} seeded in ${p.seconds.toFixed(1)} s`).join(', ')}\n\n${plansMarkdown(plans)}`);
    return;
  }
  const text = report(runs, command, started, load);
  writeReport(text, chart(runs));
  console.log(table(runs));
  const failed = runs.flatMap((r) => r.figures).filter((f) => f.failed);
  if (failed.length > 0) {
    console.error(`\n${failed.length} scenario(s) FAILED:\n${failed.map((f) => `  ${f.store} ${f.name}: ${f.failed}`).join('\n')}`);
    process.exitCode = 1;
  }
  console.error(`\nwritten to ${OUT}`);
}

await main();
