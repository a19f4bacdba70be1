// The layering of src/ (docs/architecture.md), checked by dependency-cruiser with the named rules
// of .dependency-cruiser.cjs. Violations only a folder move can remove are recorded in
// .dependency-cruiser-known-violations.json; anything else fails here with the rule's name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const DEPCRUISE = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');

/** Runs dependency-cruiser over src/ in `cwd`; its exit code is the number of violations. */
async function cruise(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [DEPCRUISE, 'src', '--config', CONFIG, ...args], { cwd, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

function ruleNames(): string[] {
  const config = fs.readFileSync(CONFIG, 'utf8');
  return [...config.matchAll(/name: '([a-z-]+)'/g)].map((match) => match[1]!);
}

describe('dependency rules', () => {
  it('src/ keeps every rule', async () => {
    const { code, stdout, stderr } = await cruise(ROOT, ['--output-type', 'err-long', '--ignore-known', '.dependency-cruiser-known-violations.json']);
    assert.equal(code, 0, `dependency rules broken (the rule's name leads each line):\n${stdout}${stderr}`);
  });

  it('each rule fires on a tree that breaks it, and stays quiet where it is kept', async () => {
    // A small src/ with one breach of each rule, cruised with the same config and the project's
    // node_modules, so a rule whose pattern stops matching is caught here and not in review.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-rules-'));
    try {
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
      fs.copyFileSync(path.join(ROOT, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
      const files: Record<string, string> = {
        'src/core/a.ts': "import type { B } from './b.ts';\nexport type A = B | 1;\n",
        'src/core/b.ts': "import type { A } from './a.ts';\nexport type B = A | 2;\n",
        'src/core/db.ts': "import { Kysely } from 'kysely';\nexport const k = Kysely;\n",
        'src/core/credentials.ts': "import { write } from '../store/credentials.ts';\nexport const set = write;\n",
        'src/domain/types.ts': 'export interface Port { n: number }\n',
        'src/domain/leaf.ts': "import { impl } from '../core/impl.ts';\nexport const l = impl;\n",
        'src/core/impl.ts': 'export const impl = 1;\n',
        'src/store/credentials.ts': 'export const write = 1;\n',
        'src/store/uses-core.ts': "import { impl } from '../core/impl.ts';\nimport type { Port } from '../domain/types.ts';\nexport const p: Port = { n: impl };\n",
        'src/store/schema.ts': 'export interface Row { n: number }\n',
        'src/store/uses-limits.ts': "import { count } from '../limits/limits.ts';\nexport const c = count;\n",
        'src/limits/limits.ts': 'export const count = 1;\n',
        'src/limits/sql.ts': "import type { Row } from '../store/schema.ts';\nexport type S = Row;\n",
        'src/limits/redis.ts': "import type { Row } from '../store/schema.ts';\nimport type { Port } from '../domain/types.ts';\nexport type R = Row | Port;\n",
        'src/limits/uses-core.ts': "import type { A } from '../core/a.ts';\nexport type U = A;\n",
        'src/core/counts.ts': "import { count } from '../limits/limits.ts';\nimport { redisCount } from '../limits/redis-count.ts';\nexport const n = count + redisCount;\n",
        'src/limits/redis-count.ts': 'export const redisCount = 1;\n',
        'src/store/diagnostics.ts': 'export const explain = 1;\n',
        'src/core/sessions.ts': "import { explain } from '../store/diagnostics.ts';\nexport const e = explain;\n",
        'src/http/route.ts': "import type { FastifyInstance } from 'fastify';\nimport { write } from '../store/credentials.ts';\nexport type R = FastifyInstance | typeof write;\n",
        'src/mail/web.ts': "import type { FastifyReply } from 'fastify';\nexport type W = FastifyReply;\n",
        'src/uses-test.ts': "import { x } from '../test/x.ts';\nexport const y = x;\n",
        'test/x.ts': 'export const x = 1;\n',
        'src/platform/config.ts': "import type { Port } from '../domain/types.ts';\nimport { impl } from '../core/impl.ts';\nexport const c: Port = { n: impl };\n",
        'src/app/app.ts': "import { c } from '../platform/config.ts';\nimport { serve } from '../run/server.ts';\nexport const a = c.n + serve;\n",
        'src/run/server.ts': "import { a } from '../app/app.ts';\nexport const serve = 1;\nexport const s = () => a;\n",
        'src/run/uses-cli.ts': "import { cli } from '../cli/cli.ts';\nexport const u = cli;\n",
        'src/cli/cli.ts': 'export const cli = 1;\n',
        'src/core/uses-app.ts': "import type { A } from '../app/types.ts';\nexport type U = A;\n",
        'src/app/types.ts': 'export type A = 1;\n',
        'src/mail/uses-http.ts': "import { route } from '../http/plain.ts';\nexport const m = route;\n",
        'src/http/plain.ts': 'export const route = 1;\n',
        'src/missing.ts': "import { nothing } from './nowhere.ts';\nexport const z = nothing;\n",
      };
      for (const [file, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), text);
      }
      const { stdout } = await cruise(dir, ['--output-type', 'json']);
      const found = (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations
        .map((v) => `${v.rule.name}: ${v.from} → ${v.to.replace(/^.*node_modules\/([^/]+)\/.*$/, '$1')}`)
        .sort();
      // A shared type from src/domain/, the SQL limits on the store, the core on the limits'
      // interface, the credential operation's own import and the dialects' fastify imports are
      // allowed: exactly these breaches are reported (the type-only one included).
      assert.deepEqual(found, [
        'core-counts-through-limits-interface: src/core/counts.ts → src/limits/redis-count.ts',
        'core-no-http-sql-redis: src/core/db.ts → kysely',
        'credential-writes-only-from-credential-operation: src/http/route.ts → src/store/credentials.ts',
        'diagnostics-only-for-bench-and-tests: src/core/sessions.ts → src/store/diagnostics.ts',
        'domain-is-a-leaf: src/domain/leaf.ts → src/core/impl.ts',
        'entry-rooms-on-top: src/core/uses-app.ts → src/app/types.ts',
        'fastify-only-in-http: src/mail/web.ts → fastify',
        'http-only-from-wiring: src/mail/uses-http.ts → src/http/plain.ts',
        'no-circular: src/app/app.ts → src/run/server.ts',
        'no-circular: src/core/a.ts → src/core/b.ts',
        'not-to-unresolvable: src/missing.ts → ./nowhere.ts',
        'only-sql-limits-on-store: src/limits/redis.ts → src/store/schema.ts',
        'platform-is-a-leaf-layer: src/platform/config.ts → src/core/impl.ts',
        'process-below-cli: src/run/uses-cli.ts → src/cli/cli.ts',
        'src-not-from-test-or-bench: src/uses-test.ts → test/x.ts',
        'store-and-limits-below-core: src/limits/uses-core.ts → src/core/a.ts',
        'store-and-limits-below-core: src/store/uses-core.ts → src/core/impl.ts',
        'store-below-limits: src/store/uses-limits.ts → src/limits/limits.ts',
        'wiring-below-process-below-cli: src/app/app.ts → src/run/server.ts',
      ]);
      const exercised = new Set(found.map((line) => line.split(':')[0]));
      // Every named rule of the config is exercised above.
      assert.deepEqual(ruleNames().sort(), [...exercised].sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
