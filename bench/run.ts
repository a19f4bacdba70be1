// `npm run bench`: starts Latchkey as its own process on a fresh embedded store and loads
// its hot paths with autocannon. Shared machines are noisy, so every figure is also given as
// a ratio to a baseline measured right around it: GET /health through the same HTTP stack.
//   BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 16), DATABASE_URL to bench PostgreSQL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { hash, verify, Algorithm } from '@node-rs/argon2';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ADMIN = 'bench-admin-token-0123456789';
const PASSWORD = 'bench-password-123';

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function json(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return (await response.json()) as any;
}

interface Figure {
  name: string;
  rps: number;
  /** GET /health req/s, measured just before and just after this scenario, averaged. */
  baseline: number;
  p50: number;
  p99: number;
  errors: number;
}

const run = (options: autocannon.Options, seconds = SECONDS) => autocannon({ connections: CONNECTIONS, duration: seconds, ...options });

/** Loads one scenario between two short baseline runs, so drifting noise hits both sides of the ratio. */
async function load(base: string, name: string, options: autocannon.Options): Promise<Figure> {
  const health = { url: `${base}/health` };
  const before = await run(health, Math.max(1, SECONDS / 2));
  const result = await run(options);
  const after = await run(health, Math.max(1, SECONDS / 2));
  return {
    name,
    rps: result.requests.average,
    baseline: (before.requests.average + after.requests.average) / 2,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

/** argon2id verifies a second on both cores, in this process: the ceiling for logins. */
async function argon2Ceiling(): Promise<number> {
  const options = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 };
  const stored = await hash(PASSWORD, options);
  const started = performance.now();
  let done = 0;
  const until = started + SECONDS * 1000;
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

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      LATCHKEY_DATA_DIR: dataDir,
      LATCHKEY_ADMIN_TOKEN: ADMIN,
      LOG_LEVEL: 'warn',
      LATCHKEY_IP_RATE_LIMIT: '100000000',
      LATCHKEY_WIKIMEDIA_REFRESH_LIMIT: '100000000',
      // Measuring throughput, not the lockout: one user logs in from every connection at once.
      LATCHKEY_LOCKOUT_THRESHOLD: '100000000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    for (let i = 0; i < 100; i++) {
      if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await json(`${base}/admin/users`, { username: 'bench', email: 'bench@example.com', password: PASSWORD }, { authorization: `Bearer ${ADMIN}` });
    const login = await json(`${base}/v1/login`, { username: 'bench', password: PASSWORD });
    const roypiToken = (await json(`${base}/auth/access_token/`, { username: 'bench', password: PASSWORD })).access_token;
    const post = (body: unknown) => ({ method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    const scenarios: [string, autocannon.Options][] = [
      ['POST /v1/login (argon2id)', { url: `${base}/v1/login`, ...post({ username: 'bench', password: PASSWORD }) }],
      ['POST /v1/token-refresh', { url: `${base}/v1/token-refresh`, ...post({ username: 'bench', refresh_token: login.refresh_token }) }],
      ['POST /auth/verify_token/', { url: `${base}/auth/verify_token/`, ...post({ token: roypiToken }) }],
      ['GET /userinfo', { url: `${base}/userinfo`, headers: { authorization: `Bearer ${login.access_token}` } }],
      ['GET /api/renew', { url: `${base}/api/renew`, headers: { authorization: `Bearer ${roypiToken}` } }],
      ['GET /.well-known/jwks.json', { url: `${base}/.well-known/jwks.json` }],
    ];
    await run({ url: `${base}/health` }, 2); // warm-up
    const figures: Figure[] = [];
    for (const [name, options] of scenarios) figures.push(await load(base, name, options));
    server.kill('SIGTERM');
    const ceiling = await argon2Ceiling();

    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    console.log(`\nLatchkey bench: ${os.availableParallelism()} cores (${cpu}), node ${process.version}, store ${process.env.DATABASE_URL ? 'PostgreSQL' : 'SQLite'}`);
    console.log(`${CONNECTIONS} connections, ${SECONDS} s a scenario; each ratio is to GET /health measured just before and after it.\n`);
    console.log('| scenario | req/s | baseline req/s | x baseline | p50 ms | p99 ms | non-2xx |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const f of figures) {
      console.log(`| ${f.name} | ${f.rps.toFixed(0)} | ${f.baseline.toFixed(0)} | ${(f.rps / f.baseline).toFixed(3)} | ${f.p50} | ${f.p99} | ${f.errors} |`);
    }
    const loginRps = figures[0].rps;
    console.log(`\nargon2id verify ceiling, in-process on all cores: ${ceiling.toFixed(0)}/s; logins reach ${(loginRps / ceiling).toFixed(2)} of it.`);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
