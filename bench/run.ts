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
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { hash, verify } from '@node-rs/argon2';
import { Store } from '../src/store/store.ts';
import { ARGON2, hashPassword } from '../src/core/passwords.ts';
import { childrenOf, freePort, workersOf } from '../test/processes.ts';
import { freshPostgres } from '../test/databases.ts';
import { seedStore, type SeededLogin } from './seed.ts';
import { hotPathPlans, plansMarkdown, type PathPlan } from './hot-paths.ts';

const { values: args } = parseArgs({
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
const SMOKE = args.smoke ?? false;
const SECONDS = Number(args.seconds ?? process.env.BENCH_SECONDS ?? (SMOKE ? 0.25 : 5));
const CONNECTIONS = Number(args.connections ?? process.env.BENCH_CONNECTIONS ?? (SMOKE ? 8 : 32));
const SESSIONS = Number(args.sessions ?? (SMOKE ? 4 : 384));
/** Users seeded before the load (each with two sessions): scenarios must not slow down as this grows. */
const USERS = Number(args.users ?? 1000);
const WORKERS = Number(args.workers ?? 1);
if (!Number.isInteger(WORKERS) || WORKERS < 1) throw new Error(`--workers must be a whole number from 1, got ${args.workers}`);
const OUT = path.resolve(args.out ?? 'BENCHMARKS.md');
const SVG = OUT.replace(/(\.md)?$/, '.svg');
const PASSWORD = 'bench-password-123';
const ROOT = path.resolve(import.meta.dirname, '..');

class ScenarioFailed extends Error {}

/** The server is started exactly as `npm start` starts it: the same node flags, the same entry. */
const START: string[] = (() => {
  // `exec` makes npm's shell hand its place (and the signals) to node; the command is what follows.
  const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start as string).replace(/^exec\s+/, '');
  const [node, ...argv] = start.split(/\s+/);
  if (node !== 'node') throw new Error(`cannot read npm start: ${node}`);
  return argv;
})();

/** A server process (with its workers, if any), with its resident memory sampled while it runs. */
class Proc {
  peakRss = 0;
  private sampler?: NodeJS.Timeout;
  constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(argv: string[], env: Record<string, string>, readyPath: string, workers = 1): Promise<Proc> {
    const port = await freePort();
    const child = spawn(process.execPath, argv, { cwd: ROOT, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    const proc = new Proc(child, `http://127.0.0.1:${port}`);
    for (let i = 0; i < 1200; i++) {
      if (child.exitCode !== null) throw new ScenarioFailed(`${argv.join(' ')} exited with ${child.exitCode}`);
      // One worker listening answers already; the figures are for all of them.
      const up = workers === 1 || workersOf(child.pid!).length === workers;
      if (up && (await fetch(proc.url + readyPath).then((r) => r.ok, () => false))) return proc;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new ScenarioFailed(`${argv.join(' ')} did not answer ${readyPath}`);
  }

  /** The server's processes: itself and, under a cluster, its workers. */
  private pids(): number[] {
    return [this.child.pid!, ...childrenOf(this.child.pid!)];
  }

  /** Resident memory of every process of the server, added up. */
  rss(): number {
    let total = 0;
    for (const pid of this.pids()) {
      try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      } catch {
        // Gone between the listing and the read.
      }
    }
    return total;
  }

  /** CPU time (user + system) the server's processes have used, in microseconds: a cost that noise hardly moves. */
  cpuMicros(): number {
    let total = 0;
    for (const pid of this.pids()) {
      try {
        const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        total += ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // clock ticks (USER_HZ = 100)
      } catch {
        // Gone between the listing and the read.
      }
    }
    return total;
  }

  /** Peak RSS from now until the returned function is called. */
  watchRss(): () => number {
    let peak = this.rss();
    const timer = setInterval(() => (peak = Math.max(peak, this.rss())), 50);
    return () => {
      clearInterval(timer);
      peak = Math.max(peak, this.rss());
      this.peakRss = Math.max(this.peakRss, peak);
      return peak;
    };
  }

  async stop() {
    clearInterval(this.sampler);
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

const load = (options: autocannon.Options, seconds: number) =>
  autocannon({ connections: CONNECTIONS, duration: Math.max(seconds, 0.25), ...options });

/** Answers per second counting 2xx only. */
const okRate = (r: autocannon.Result) => r['2xx'] / r.duration;

interface Figure {
  store: string;
  name: string;
  rps: number;
  p50: number;
  p99: number;
  hello: number;
  health: number;
  peakRss: number;
  /** Server CPU time per 2xx answer, microseconds. */
  cpuPerRequest?: number;
  /** For logins: raw argon2id hashes per second measured around the scenario. */
  argon2?: number;
  note?: string;
  failed?: string;
}

interface Scenario {
  name: string;
  options: autocannon.Options;
  /** Checks one answer before the load: a scenario that does not do what it says fails. */
  check: (status: number, body: any) => boolean;
  /** Compare with raw argon2id rather than only with the yardsticks. */
  hashBound?: boolean;
}

/** argon2id verifications per second on every core, in this process, with the pool sized as the server's. */
async function argon2Rate(seconds: number): Promise<number> {
  const stored = await hash(PASSWORD, ARGON2);
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: os.availableParallelism() * 2 }, async () => {
      while (performance.now() < until) {
        await verify(stored, PASSWORD);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

async function sample(options: autocannon.Options): Promise<{ status: number; body: any }> {
  const request = options.requests?.[0];
  let body = options.body as string | undefined;
  if (request && typeof request.setupRequest === 'function') body = request.setupRequest({} as never, {}).body as string;
  const response = await fetch(options.url, { method: options.method ?? 'GET', headers: options.headers as Record<string, string>, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed };
}

async function measure(store: string, server: Proc, hello: Proc, scenario: Scenario): Promise<Figure> {
  const figure: Figure = { store, name: scenario.name, rps: 0, p50: 0, p99: 0, hello: 0, health: 0, peakRss: 0 };
  try {
    const answer = await sample(scenario.options);
    if (!scenario.check(answer.status, answer.body)) {
      throw new ScenarioFailed(`setup: first answer was ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
    }
    await load(scenario.options, Math.min(1, SECONDS)); // warm this scenario's own path
    const yardsticks = async () => {
      const h = await load({ url: `${hello.url}/` }, SECONDS / 2);
      const own = await load({ url: `${server.url}/health` }, SECONDS / 2);
      return [okRate(h), okRate(own)];
    };
    const argonBefore = scenario.hashBound ? await argon2Rate(SECONDS / 2) : 0;
    const [helloBefore, healthBefore] = await yardsticks();
    const stopWatching = server.watchRss();
    const cpuBefore = server.cpuMicros();
    const result = await load(scenario.options, SECONDS);
    figure.cpuPerRequest = (server.cpuMicros() - cpuBefore) / Math.max(1, result['2xx']);
    figure.peakRss = stopWatching();
    const [helloAfter, healthAfter] = await yardsticks();
    const argonAfter = scenario.hashBound ? await argon2Rate(SECONDS / 2) : 0;
    Object.assign(figure, {
      rps: okRate(result),
      p50: result.latency.p50,
      p99: result.latency.p99,
      hello: (helloBefore + helloAfter) / 2,
      health: (healthBefore + healthAfter) / 2,
      argon2: scenario.hashBound ? (argonBefore + argonAfter) / 2 : undefined,
    });
    const wrong = result.non2xx + result.errors + result.timeouts;
    if (wrong > 0) throw new ScenarioFailed(`${wrong} of ${result['2xx'] + wrong} answers were not 2xx (${JSON.stringify(result.statusCodeStats)})`);
    if (result['2xx'] === 0) throw new ScenarioFailed('no answer at all');
  } catch (error) {
    figure.failed = (error as Error).message;
  }
  return figure;
}

/** Verification while logins keep every hashing thread busy: its p99 is what a resource server feels. */
async function underLoginStorm(store: string, server: Proc, hello: Proc, login: Scenario, verifyScenario: Scenario): Promise<Figure> {
  const figure: Figure = { store, name: `${verifyScenario.name} during a login storm`, rps: 0, p50: 0, p99: 0, hello: 0, health: 0, peakRss: 0 };
  try {
    const [h, own] = [await load({ url: `${hello.url}/` }, SECONDS / 2), await load({ url: `${server.url}/health` }, SECONDS / 2)];
    const stopWatching = server.watchRss();
    const [logins, verifies] = await Promise.all([load(login.options, SECONDS), load({ ...verifyScenario.options, connections: Math.max(1, CONNECTIONS / 4) }, SECONDS)]);
    figure.peakRss = stopWatching();
    Object.assign(figure, { rps: okRate(verifies), p50: verifies.latency.p50, p99: verifies.latency.p99, hello: okRate(h), health: okRate(own) });
    figure.note = `${okRate(logins).toFixed(0)} logins/s at the same time`;
    const wrong = logins.non2xx + logins.errors + verifies.non2xx + verifies.errors + verifies.timeouts;
    if (wrong > 0) throw new ScenarioFailed(`${wrong} answers were not 2xx`);
  } catch (error) {
    figure.failed = (error as Error).message;
  }
  return figure;
}

async function json(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const parsed = (await response.json().catch(() => undefined)) as any;
  if (!response.ok) throw new ScenarioFailed(`setup: ${url} answered ${response.status} ${JSON.stringify(parsed)}`);
  return parsed;
}

const post = (url: string, body: unknown): autocannon.Options => ({
  url,
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

interface StoreRun {
  name: string;
  figures: Figure[];
  peakRss: number;
  seeding: Seeding;
}

interface Seeding {
  logins: SeededLogin[];
  seconds: number;
  plans: PathPlan[];
}

const storeOf = (storeEnv: Record<string, string>) => Store.open({ databaseUrl: storeEnv.DATABASE_URL || undefined, dataDir: storeEnv.LATCHKEY_DATA_DIR });

/** Seeds a fresh store with USERS users and 2 x USERS sessions, before any server opens it; with --plans, explains the hot paths on it. */
async function seed(name: string, storeEnv: Record<string, string>): Promise<Seeding> {
  const store = storeOf(storeEnv);
  try {
    await store.migrate();
    const passwordHash = await hashPassword(PASSWORD);
    const started = performance.now();
    const elapsed = () => ((performance.now() - started) / 1000).toFixed(1);
    let shown = 0;
    const logins = await seedStore(store, {
      users: USERS,
      passwordHash,
      keep: SESSIONS,
      onProgress: ({ users, sessions }) => {
        if (users < USERS && users < shown + USERS / 10) return;
        shown = users;
        console.error(`  ${name}: seeded ${users.toLocaleString('en')} users, ${sessions.toLocaleString('en')} sessions (${elapsed()} s)`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    if (logins.length === 0) throw new ScenarioFailed('seeding kept no login to bench with');
    const plans = args.plans ? await hotPathPlans(store, logins[0]) : [];
    return { logins, seconds, plans };
  } finally {
    await store.close();
  }
}

async function benchStore(name: string, storeEnv: Record<string, string>, hello: Proc, seeding: Seeding): Promise<StoreRun> {
  const server = await Proc.start(START, {
    ...storeEnv,
    LOG_LEVEL: 'warn',
    // Throughput, not the limits: one user logs in and refreshes from every connection at once.
    LATCHKEY_IP_RATE_LIMIT: '100000000',
    LATCHKEY_WIKIMEDIA_REFRESH_LIMIT: '100000000',
    LATCHKEY_LOCKOUT_THRESHOLD: '100000000',
    LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: '100000000',
    LATCHKEY_WORKERS: String(WORKERS),
  }, '/health', WORKERS);
  const overall = server.watchRss();
  const figures: Figure[] = [];
  let peakRss = 0;
  try {
    const base = server.url;
    // One of the seeded users, somewhere in the table, logs in, verifies and renews.
    const { username, email } = seeding.logins[0];
    const v1 = await json(`${base}/v1/login`, { username, password: PASSWORD });
    const roypi = (await json(`${base}/auth/access_token/`, { username, password: PASSWORD })).access_token as string;
    const ziik = (await json(`${base}/api/authenticate`, { username: email, password: PASSWORD }))[0].jwt as string;
    // Many seeded users' sessions refreshing, as in production, rather than one row every request fights over.
    const refreshing = seeding.logins;
    let next = 0;
    const refreshBody = () => {
      const { username: owner, refreshToken } = refreshing[next++ % refreshing.length];
      return JSON.stringify({ username: owner, refresh_token: refreshToken });
    };

    const login: Scenario = {
      name: 'POST /v1/login (argon2id)',
      options: post(`${base}/v1/login`, { username, password: PASSWORD }),
      check: (s, b) => s === 200 && typeof b?.access_token === 'string',
      hashBound: true,
    };
    const userinfo: Scenario = {
      name: 'GET /userinfo',
      options: { url: `${base}/userinfo`, headers: { authorization: `Bearer ${v1.access_token}` } },
      check: (s, b) => s === 200 && b?.username === username,
    };
    const scenarios: Scenario[] = [
      userinfo,
      {
        name: 'POST /auth/verify_token/',
        options: post(`${base}/auth/verify_token/`, { token: roypi }),
        check: (s, b) => s === 200 && b?.user?.username === username,
      },
      {
        name: 'GET /forward-auth',
        options: { url: `${base}/forward-auth`, headers: { authorization: `Bearer ${ziik}` } },
        check: (s) => s === 200,
      },
      {
        name: `POST /v1/token-refresh (${refreshing.length} sessions)`,
        options: {
          url: `${base}/v1/token-refresh`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          requests: [{ method: 'POST', setupRequest: (request) => ({ ...request, body: refreshBody() }) }],
        },
        check: (s, b) => s === 200 && typeof b?.access_token === 'string' && typeof b?.id_token === 'string',
      },
      {
        name: 'GET /api/renew',
        options: { url: `${base}/api/renew`, headers: { authorization: `Bearer ${ziik}` } },
        check: (s, b) => s === 200 && typeof b?.[0]?.jwt === 'string',
      },
      login,
      {
        name: 'GET /.well-known/jwks.json',
        options: { url: `${base}/.well-known/jwks.json` },
        check: (s, b) => s === 200 && Array.isArray(b?.keys) && b.keys.length > 0,
      },
    ];
    for (const scenario of scenarios) {
      const figure = await measure(name, server, hello, scenario);
      figures.push(figure);
      console.error(`  ${name} ${scenario.name}: ${figure.failed ? `FAILED ${figure.failed}` : `${figure.rps.toFixed(0)}/s`}`);
    }
    figures.push(await underLoginStorm(name, server, hello, login, userinfo));
  } finally {
    peakRss = overall();
    await server.stop();
  }
  return { name, figures, peakRss, seeding };
}

// ---- report

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(3) : '–');

function table(runs: StoreRun[]): string {
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
function chart(runs: StoreRun[]): string {
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

function report(runs: StoreRun[], command: string, started: Date, load: number[]): string {
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

function writeReport(text: string, svg: string) {
  const before = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '# Benchmarks\n\n<!-- bench:begin --><!-- bench:end -->\n';
  const start = before.indexOf('<!-- bench:begin');
  const end = before.indexOf('<!-- bench:end -->');
  const next = start >= 0 && end > start ? before.slice(0, start) + text + before.slice(end + '<!-- bench:end -->'.length) : `${before}\n${text}\n`;
  fs.writeFileSync(OUT, next);
  fs.writeFileSync(SVG, svg);
}

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
