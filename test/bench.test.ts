// The bench cannot rot: a smoke run of a few seconds on SQLite must finish, pass every
// scenario's own checks, and write a sane report. No figure is asserted: only that it exists.
// (The hot paths' query plans are checked by test/query-plans.test.ts.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('bench smoke run', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-smoke-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('seeds the store, runs every scenario with only 2xx answers, and writes the table and the chart', async () => {
    const out = path.join(dir, 'BENCH.md');
    await run(process.execPath, ['-r', './bin/threadpool.cjs', '--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], {
      env: { ...process.env, DATABASE_URL: '' },
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = fs.readFileSync(out, 'utf8');
    assert.doesNotMatch(report, /FAILED/);
    const rows = report.split('\n').filter((line) => line.startsWith('| SQLite | ') && !line.includes('peak RSS over the run'));
    const names = rows.map((row) => row.split(' | ')[1]);
    for (const expected of ['GET /userinfo', 'POST /auth/verify_token/', 'GET /forward-auth', 'POST /v1/token-refresh', 'GET /api/renew', 'POST /v1/login (argon2id)', 'GET /.well-known/jwks.json', 'GET /userinfo during a login storm']) {
      assert.ok(names.some((n) => n.startsWith(expected)), `a row for ${expected}`);
    }
    for (const row of rows) {
      const cells = row.split(' | ');
      const rate = Number(cells[2]);
      const xHello = Number(cells[5]);
      assert.ok(rate > 0 && Number.isFinite(rate), `a positive 2xx rate in ${row}`);
      assert.ok(xHello > 0 && Number.isFinite(xHello), `a ratio to hello-world in ${row}`);
      assert.match(cells[9] ?? '', /^\d+ MB$/, `a peak RSS in ${row}`);
    }
    assert.match(rows.find((r) => r.includes('/v1/login'))!, /\d\.\d{3} \(\d+\/s\)/, 'logins compared with raw argon2id');
    assert.match(report, /seeded first with 1,000 users and 2,000 sessions/, 'the store is seeded before the load');
    assert.match(fs.readFileSync(out.replace(/\.md$/, '.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*<rect [\s\S]*<\/svg>\s*$/);
  });
});
