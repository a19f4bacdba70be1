// The report: BENCHMARKS.md's table between its markers, and the chart beside it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONNECTIONS, OUT, SECONDS, SVG, USERS, WORKERS } from './args.ts';
import type { StoreRun } from './scenarios.ts';

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
// Three decimals, or three significant digits below 0.001 (a login against a hello-world on a
// loaded machine is 0.0003, not 0.000).
const ratio = (a: number, b: number) => (b > 0 ? (a / b >= 0.001 || a === 0 ? (a / b).toFixed(3) : (a / b).toPrecision(3)) : '–');

export function table(runs: StoreRun[]): string {
  const lines = [
    '| store | scenario | 2xx/s | p50 ms | p99 ms | x hello-world | x own /health | x raw argon2id | server CPU µs/answer | peak RSS | |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const run of runs) {
    for (const f of run.figures) {
      const verdict = f.failed ? `**FAILED**: ${f.failed}` : (f.note ?? '');
      lines.push(
        `| ${f.store} | ${f.name} | ${f.rps.toFixed(0)} | ${f.p50} | ${f.p99} | ${ratio(f.rps, f.hello)} | ${ratio(f.rps, f.health)} | ${f.argon2 ? `${ratio(f.rps, f.argon2)} (${f.argon2.toFixed(0)}/s)` : ''} | ${f.cpuPerRequest === undefined ? '' : f.cpuPerRequest.toFixed(0)} | ${mb(f.peakRss)} | ${verdict} |`,
      );
    }
    lines.push(`| ${run.name} | **server peak RSS over the run** | | | | | | | | ${mb(run.peakRss)} | |`);
  }
  return lines.join('\n');
}

/** A bar per scenario and store: its rate as a share of the hello-world measured around it. */
export function chart(runs: StoreRun[]): string {
  const rows = runs.flatMap((run) => run.figures.map((f) => ({ label: `${run.name}: ${f.name}`, value: f.failed || !f.hello ? 0 : f.rps / f.hello })));
  const width = 760;
  const labelWidth = 360;
  const barMax = width - labelWidth - 60;
  const rowHeight = 22;
  const height = rows.length * rowHeight + 40;
  const scale = Math.max(1, ...rows.map((r) => r.value));
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows
    .map((r, i) => {
      const y = 30 + i * rowHeight;
      const w = Math.max(1, (r.value / scale) * barMax);
      return `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end">${esc(r.label)}</text><rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="14" fill="${r.label.startsWith('PostgreSQL') ? '#336791' : '#5a8f29'}"/><text x="${labelWidth + w + 4}" y="${y + 14}">${r.value.toFixed(2)}</text>`;
    })
    .join('\n');
  const goal = labelWidth + (0.7 / scale) * barMax;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">
<text x="${labelWidth}" y="16" font-weight="bold">2xx/s as a share of a fastify hello-world measured around it</text>
<line x1="${goal.toFixed(1)}" y1="24" x2="${goal.toFixed(1)}" y2="${height}" stroke="#c00" stroke-dasharray="3,3"/><text x="${(goal + 3).toFixed(1)}" y="${height - 4}" fill="#c00">0.7</text>
${bars}
</svg>
`;
}

export function report(runs: StoreRun[], command: string, started: Date, load: number[]): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const seeded = runs.map((run) => `${run.name} in ${run.seeding.seconds.toFixed(1)} s`).join(', ');
  return `<!-- bench:begin (written by \`npm run bench\`; edit outside these markers) -->
Run at ${started.toISOString()} on ${os.availableParallelism()} cores (${cpu}), ${mb(os.totalmem())} RAM, node ${process.version},
load average ${load.map((l) => l.toFixed(1)).join(' / ')} at the start (the machine is shared: read the ratios).

\`\`\`sh
${command}
\`\`\`

Each store was seeded first with ${USERS.toLocaleString('en')} users and ${(2 * USERS).toLocaleString('en')} sessions (${seeded});
the scenarios log in, verify and refresh as some of those users.
${CONNECTIONS} connections, ${SECONDS} s a scenario after a warm-up of its own path; the load generator runs on the same box.${WORKERS > 1 ? `
The server ran with LATCHKEY_WORKERS=${WORKERS}: its memory and CPU are those of the primary and every worker, added up.` : ''}
Server CPU per answer (user + system time of the server's processes over the 2xx they sent) is the
figure the machine's other load moves least. Each ratio is to yardsticks measured just before and just after the scenario: a fastify hello-world
in its own process, Latchkey's own \`GET /health\`, and (logins) raw argon2id verifications on every
core in the bench's process, with the thread pool sized as the server's. Only 2xx answers count.

${table(runs)}

![2xx/s as a share of hello-world](${path.basename(SVG)})
<!-- bench:end -->`;
}

export function writeReport(text: string, svg: string) {
  const before = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '# Benchmarks\n\n<!-- bench:begin --><!-- bench:end -->\n';
  const start = before.indexOf('<!-- bench:begin');
  const end = before.indexOf('<!-- bench:end -->');
  const next = start >= 0 && end > start ? before.slice(0, start) + text + before.slice(end + '<!-- bench:end -->'.length) : `${before}\n${text}\n`;
  fs.writeFileSync(OUT, next);
  fs.writeFileSync(SVG, svg);
}
