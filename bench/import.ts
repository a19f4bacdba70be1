// `npm run bench:import`: how fast `latchkey users import` takes a large file of users with
// existing hashes (no hashing), and whether its memory stays flat as the file grows. Runs the real
// CLI as a process on a fresh SQLite store and, with DATABASE_URL, a fresh PostgreSQL database;
// peak RSS from /usr/bin/time. Prints a Markdown table for BENCHMARKS.md's import section.
//
//   npm run bench:import [-- --rows 1000000,100000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { execFileSync, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { freshPostgres } from '../test/databases.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000,1000000' } } });
const sizes = values.rows!.split(',').map(Number);
const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;
// A real bcrypt hash ($2y$, cost 10) stands for every user's: import stores hashes, it does not check them.
const HASH = '$2y$10$XPaZCa7s6pCycEqPgvaJduKaR1zMjOkpqpzx6F6uiKxcuwKQoneVu';

async function writeFile(file: string, rows: number) {
  const out = fs.createWriteStream(file);
  for (let i = 1; i <= rows; i++) {
    const line = JSON.stringify({ username: `user${i}`, email: `user${i}@example.com`, password_hash: HASH, status: 'active', created_at: '2024-01-02T03:04:05Z' });
    if (!out.write(line + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
}

async function freshEnv(engine: 'sqlite' | 'postgres') {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-import-bench-'));
  const env: Record<string, string> = { LATCHKEY_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
  let drop = async () => fs.rmSync(dataDir, { recursive: true, force: true });
  if (engine === 'postgres') {
    const database = await freshPostgres(process.env.DATABASE_URL!, 'latchkey_import_bench');
    env.DATABASE_URL = database.url;
    const dropDir = drop;
    drop = async () => {
      await database.drop();
      await dropDir();
    };
  }
  return { env, drop };
}

const engines: ('sqlite' | 'postgres')[] = ['sqlite', ...(process.env.DATABASE_URL ? ['postgres' as const] : [])];
const lines: string[] = ['| store | rows | file | seconds | rows/s | peak RSS |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
for (const rows of sizes) {
  const file = path.join(os.tmpdir(), `latchkey-import-bench-${rows}.jsonl`);
  await writeFile(file, rows);
  const mb = (fs.statSync(file).size / 1e6).toFixed(0);
  for (const engine of engines) {
    const { env, drop } = await freshEnv(engine);
    try {
      const childEnv = { ...process.env, ...env };
      if (engine === 'sqlite') delete childEnv.DATABASE_URL;
      // Migrate first, so the timing is the import's alone.
      execFileSync(process.execPath, [CLI, 'migrate'], { env: childEnv });
      const run = spawnSync('/usr/bin/time', ['-f', 'peak-rss-kb %M', process.execPath, CLI, 'users', 'import', file], {
        env: childEnv,
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
      });
      if (run.status !== 0) throw new Error(`${engine}: import failed: ${run.stderr}`);
      const summary = JSON.parse(run.stdout);
      if (summary.imported !== rows) throw new Error(`${engine}: imported ${summary.imported} of ${rows}`);
      const peakMb = (Number(/peak-rss-kb (\d+)/.exec(run.stderr)![1]) / 1024).toFixed(0);
      lines.push(`| ${engine} | ${rows.toLocaleString('en')} | ${mb} MB | ${summary.seconds.toFixed(1)} | ${summary.rows_per_second.toLocaleString('en')} | ${peakMb} MB |`);
    } finally {
      await drop();
    }
  }
  fs.rmSync(file, { force: true });
}
console.log(lines.join('\n'));
