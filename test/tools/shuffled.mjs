// The suite once more, its files in a shuffled order, to catch a test file that passes only after
// another has run (a user, a key, a row or a limit some earlier file left behind).
//
//   node test/tools/shuffled.mjs                   a fresh order, its seed printed first
//   SHUFFLE_SEED=123456789 node test/tools/shuffled.mjs   replays that order exactly
//   node test/tools/shuffled.mjs test/a.test.ts test/b.test.ts   shuffles only these files
//   node test/tools/shuffled.mjs --list            prints the order, one file a line, and runs nothing
//
// Node 20's runner sorts the files it is given, so each file runs in a runner of its own, in the
// order drawn, with the flags and reporters of `npm test` (read from package.json, so the two
// cannot drift). Plain JavaScript: it needs no tsx itself.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const ROOT = path.resolve(import.meta.dirname, '../..');
const GLOB = 'test/*.test.ts';

/** `npm test`'s command without `node` and the file glob: the flags every file runs with here. */
function testFlags() {
  const script = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.test;
  const [node, ...argv] = script.trim().split(/\s+/);
  if (node !== 'node' || argv.at(-1) !== GLOB) throw new Error(`cannot read npm test (expected "node … ${GLOB}"): ${script}`);
  return argv.slice(0, -1);
}

/** mulberry32: a small PRNG whose whole state is the seed, so an order replays from one number. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(items, next) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const given = process.env.SHUFFLE_SEED;
if (given !== undefined && !/^\d+$/.test(given)) throw new Error(`SHUFFLE_SEED must be a whole number, got ${given}`);
const seed = given !== undefined ? Number(given) % 2 ** 32 : Math.floor(Math.random() * 2 ** 32);
const listOnly = process.argv.includes('--list');
const chosen = process.argv.slice(2).filter((arg) => arg !== '--list').map((file) => path.relative(ROOT, path.resolve(file)));
const replay = ['SHUFFLE_SEED=' + seed, 'node test/tools/shuffled.mjs', ...chosen].join(' ');
const all = fs.readdirSync(path.join(ROOT, 'test')).filter((name) => name.endsWith('.test.ts')).map((name) => `test/${name}`);
for (const file of chosen) if (!all.includes(file)) throw new Error(`not a test file of ${GLOB}: ${file}`);
const files = shuffle((chosen.length > 0 ? chosen : all).sort(), random(seed));
const flags = testFlags();
if (listOnly) {
  console.log(files.join('\n'));
  process.exit(0);
}

console.log(`shuffled file order, seed ${seed} (replay: ${replay}):\n  ${files.join('\n  ')}`);
const failed = [];
for (const [index, file] of files.entries()) {
  console.log(`\n== ${index + 1}/${files.length} ${file}`);
  const run = spawnSync(process.execPath, [...flags, file], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, LATCHKEY_TEST_ONE_FILE: '1' } });
  if (run.status !== 0) failed.push(`${file} (${run.signal ?? `exit ${run.status}`})`);
}
if (failed.length > 0) {
  console.error(`\n${failed.length} file(s) failed in the shuffled order:\n  ${failed.join('\n  ')}\nreplay: ${replay}`);
  process.exit(1);
}
console.log(`\nevery file passed in the shuffled order (seed ${seed})`);
