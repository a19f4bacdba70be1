// A node:test reporter that adds to the spec reporter's totals how many tests ran on each
// store, and that makes any skipped or todo test fatal under CI=true: a suite skipped there
// (no PostgreSQL, no Redis, no browser) would otherwise pass unseen inside "pass N".

// Plain JavaScript: Node 20 loads reporters without the tsx hooks the tests use.

/** @typedef {{ passed: number, failed: number, skipped: number, suites: number }} Counts */
/** @typedef {{ name: string, suite: boolean, failed: boolean, skipped: boolean, children: Node[] }} Node */

const ENGINE = /\b(sqlite|postgres)\b/;
const underCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';
// One file run alone (test/tools/shuffled.mjs): whether the suite as a whole ran on PostgreSQL is
// npm test's question; a file without storage tests must not fail for it. Skips still fail.
const oneFile = process.env.LATCHKEY_TEST_ONE_FILE === '1';

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* engineSummary(source) {
  /** @type {Map<string, Counts>} */
  const counts = new Map();
  /** @type {string[]} */
  const skippedUnderCi = [];
  // Children are reported before their parent: keep them by depth until the parent comes.
  /** @type {Node[][]} */
  let pending = [];

  /** @param {Node} node @param {string} engine @param {string} path */
  const tally = (node, engine, path) => {
    const here = ENGINE.exec(node.name)?.[1] ?? engine;
    const where = path ? `${path} > ${node.name}` : node.name;
    const c = counts.get(here) ?? { passed: 0, failed: 0, skipped: 0, suites: 0 };
    counts.set(here, c);
    if (node.skipped) {
      // A skipped suite hides its tests: count it, and name it.
      c.skipped++;
      skippedUnderCi.push(where);
      return;
    }
    if (node.suite) {
      c.suites++;
      for (const child of node.children) tally(child, here, where);
    } else if (node.failed) c.failed++;
    else c.passed++;
  };

  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, nesting, skip, todo, details } = event.data;
    /** @type {Node} */
    const node = {
      name,
      suite: details?.type === 'suite',
      failed: event.type === 'test:fail',
      skipped: Boolean(skip) || Boolean(todo),
      children: pending[nesting + 1] ?? [],
    };
    pending = pending.slice(0, nesting + 1);
    if (nesting === 0) tally(node, 'no store', '');
    else (pending[nesting] ??= []).push(node);
  }

  const order = ['sqlite', 'postgres', 'no store'];
  const lines = [...counts.entries()]
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([engine, c]) => `  ${engine.padEnd(9)} ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, in ${c.suites} suites`);
  yield `\ntests by store:\n${lines.join('\n')}\n`;
  const ranOnPostgres = (counts.get('postgres')?.passed ?? 0) + (counts.get('postgres')?.failed ?? 0) > 0;
  if (!ranOnPostgres) yield '  postgres  none ran: set TEST_DATABASE_URL to run every storage test on PostgreSQL too\n';

  if (underCi) {
    const problems = [...skippedUnderCi.map((where) => `skipped: ${where}`)];
    if (!ranOnPostgres && !oneFile) problems.push('no test ran on PostgreSQL');
    if (problems.length) {
      yield `\nCI=true, and not every suite ran on both stores:\n${problems.map((p) => `  ${p}`).join('\n')}\n`;
      process.exitCode = 1;
    }
  }
}
