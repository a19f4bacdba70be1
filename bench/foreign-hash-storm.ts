// A native login's latency while a storm of logins hits costly foreign hashes (issue 12, item 5):
// the real server (`bin/latchkey.js serve`, with the thread pool set up as `npm start` does) on a
// fresh SQLite store, users imported through the admin API with costly hashes the default cap
// admits (bcrypt cost 12, about 18 default argon2id checks; Django's pbkdf2_sha256 at 1,000,000
// iterations, about 14), and `--storm` clients logging in against them with wrong passwords (a
// right one would be rehashed to argon2id and stop being costly) as fast as they are answered.
// Meanwhile one client logs a native (argon2id) user in, one login at a time; its p50 and p99 are
// compared with the same logins on an idle server.
//
//   node --import tsx bench/foreign-hash-storm.ts [--storm 16] [--samples 40]
//
// It runs the server of the tree it sits in, so a copy in an older checkout measures that code
// (what BENCHMARKS.md calls "before"). Prints one JSON line.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hash as bcryptHash } from '@node-rs/bcrypt';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdefghijkl';
const HIGH = '100000000';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const STORM = flag('storm', 16);
const SAMPLES = flag('samples', 40);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: response.status, text: await response.text() };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-storm-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, ['-r', './bin/threadpool.cjs', 'bin/latchkey.js', 'serve'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      LATCHKEY_DATA_DIR: dataDir,
      LATCHKEY_ADMIN_TOKEN: ADMIN_TOKEN,
      LATCHKEY_WORKERS: '1',
      LOG_LEVEL: 'error',
      // One client address: the per-IP and per-account limits would otherwise end the storm early.
      LATCHKEY_IP_RATE_LIMIT: HIGH,
      LATCHKEY_LOCKOUT_THRESHOLD: HIGH,
      LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: HIGH,
      // Each storm client comes from a /48 of its own and the native user from elsewhere, as on the
      // internet: the costly-hash gate shares its places by client network (src/core/passwords.ts).
      LATCHKEY_TRUST_PROXY: 'true',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stopped = new Promise((resolve) => server.on('exit', resolve));
  try {
    for (let tries = 0; ; tries++) {
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        // not listening yet
      }
      if (tries > 300) throw new Error('the server did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const made = await post(`${url}/admin/users`, JSON.stringify({ username: 'native', email: 'native@example.com', password: 'native-password-1' }), admin);
    if (made.status !== 201) throw new Error(`creating the native user: ${made.status} ${made.text}`);

    // Half bcrypt 12, half PBKDF2 at 1M: costly, and under the default cap (so imported by both trees).
    const rows: string[] = [];
    for (let i = 0; i < 4; i++) rows.push(JSON.stringify({ username: `bcrypt${i}`, password_hash: await bcryptHash(`their-password-${i}`, 12) }));
    for (let i = 0; i < 4; i++) {
      const digest = crypto.randomBytes(32).toString('base64');
      rows.push(JSON.stringify({ username: `pbkdf2${i}`, password_hash: `pbkdf2_sha256$1000000$salt${i}abcdef$${digest}` }));
    }
    const imported = await post(`${url}/admin/users/import`, rows.join('\n'), { ...admin, 'content-type': 'application/x-ndjson' });
    const counts = JSON.parse(imported.text);
    if (counts.imported !== rows.length) throw new Error(`import: ${imported.text}`);

    const nativeLogin = async () => {
      const started = performance.now();
      const reply = await post(`${url}/v1/login`, JSON.stringify({ username: 'native', password: 'native-password-1' }), { 'x-forwarded-for': '203.0.113.7' });
      if (reply.status !== 200) throw new Error(`native login: ${reply.status} ${reply.text}`);
      return performance.now() - started;
    };
    const measure = async () => {
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) times.push(await nativeLogin());
      return times.sort((a, b) => a - b);
    };

    await measure(); // warm-up: the pool's threads, the JIT, SQLite's pages
    const idle = await measure();

    let storming = true;
    const stormBegan = performance.now();
    const answers = new Map<number, number>();
    const stormClients = Array.from({ length: STORM }, async (_, i) => {
      const username = i % 2 ? `bcrypt${(i >> 1) % 4}` : `pbkdf2${(i >> 1) % 4}`;
      const from = { 'x-forwarded-for': `2001:db8:${(i + 1).toString(16)}::1` };
      while (storming) {
        const status = await post(`${url}/v1/login`, JSON.stringify({ username, password: 'a-wrong-guess' }), from).then((reply) => reply.status, () => 0);
        answers.set(status, (answers.get(status) ?? 0) + 1);
        // A refused client tries again soon, not in a busy loop that would load the bench's own core.
        if (status !== 401) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 2000)); // the storm fills the queues first
    const storm = await measure();
    storming = false;
    await Promise.all(stormClients);
    const stormSeconds = (performance.now() - stormBegan) / 1000;

    const ms = (value: number) => Math.round(value * 10) / 10;
    console.log(
      JSON.stringify({
        tree: root,
        storm_clients: STORM,
        samples: SAMPLES,
        idle_ms: { p50: ms(percentile(idle, 50)), p99: ms(percentile(idle, 99)) },
        storm_ms: { p50: ms(percentile(storm, 50)), p99: ms(percentile(storm, 99)) },
        ratio: { p50: ms(percentile(storm, 50) / percentile(idle, 50)), p99: ms(percentile(storm, 99) / percentile(idle, 99)) },
        storm_answers: Object.fromEntries(answers),
        storm_answers_per_second: ms([...answers.values()].reduce((a, b) => a + b, 0) / stormSeconds),
        machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
      }),
    );
  } finally {
    server.kill('SIGTERM');
    await stopped;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
