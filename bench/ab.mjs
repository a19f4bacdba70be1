// `node bench/ab.mjs <before checkout> <after checkout>`: server CPU per answer of POST /v1/token-refresh and GET /userinfo
// on SQLite, in two checkouts of Latchkey: each one's own server (npm start's command), one user
// with 16 sessions, autocannon from this process, the server's CPU from /proc. Alternates the
// trees (ROUNDS, default 3) so drift on a shared machine falls on both; PROF=dir adds --cpu-prof.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
const [beforeTree, afterTree] = process.argv.slice(2).map((tree) => path.resolve(tree));
if (!afterTree) throw new Error('usage: node bench/ab.mjs <before checkout> <after checkout> (PROF=dir writes a CPU profile of each server)');
const trees = { before: beforeTree, after: afterTree };
const TOKEN = 'f3a9c1e7b2d4a6c8e0f1a3b5c7d9e2f4a6b8c0d2';
const cpuOf = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10_000; };
async function server(tree, port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ab-'));
  const child = spawn(process.execPath, [...(process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}/${path.basename(tree)}`] : []), '-r', './bin/threadpool.cjs', '--max-semi-space-size=2', 'bin/latchkey.js', 'serve'], { cwd: tree, env: { ...process.env, PORT: String(port), LATCHKEY_DATA_DIR: dir, LATCHKEY_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'silent', LATCHKEY_IP_RATE_LIMIT: '100000000', LATCHKEY_WIKIMEDIA_REFRESH_LIMIT: '100000000', LATCHKEY_LOCKOUT_THRESHOLD: '100000000', LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: '100000000', DATABASE_URL: '' }, stdio: 'ignore' });
  for (let i = 0; i < 600; i++) { if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) break; await new Promise((r) => setTimeout(r, 100)); }
  return { child, dir, url: `http://127.0.0.1:${port}` };
}
const post = (url, body, headers = {}) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: await r.json().catch(() => ({})) }));
async function run(name, tree, port) {
  const s = await server(tree, port);
  const made = await post(`${s.url}/admin/users`, { username: 'bench', email: 'bench@example.com', password: 'bench-password-123' }, { authorization: `Bearer ${TOKEN}` });
  if (made.status !== 201) throw new Error(`${name}: create ${made.status} ${JSON.stringify(made.body)}`);
  const sessions = [];
  for (let i = 0; i < 16; i++) { const l = await post(`${s.url}/v1/login`, { username: 'bench', password: 'bench-password-123' }); sessions.push(l.body); }
  if (!sessions[0].refresh_token) throw new Error(`${name}: login ${JSON.stringify(sessions[0])}`);
  let next = 0;
  const out = {};
  for (const [what, opts] of [
    ['refresh', { url: `${s.url}/v1/token-refresh`, method: 'POST', headers: { 'content-type': 'application/json' }, requests: [{ setupRequest: (r) => ({ ...r, body: JSON.stringify({ username: 'bench', refresh_token: sessions[next++ % sessions.length].refresh_token }) }) }] }],
    ['userinfo', { url: `${s.url}/userinfo`, headers: { authorization: `Bearer ${sessions[0].access_token}` } }],
  ]) {
    const c0 = cpuOf(s.child.pid);
    const r = await autocannon({ ...opts, connections: 16, duration: 5 });
    const c1 = cpuOf(s.child.pid);
    out[what] = { ok: r['2xx'], other: r.non2xx, cpuPer: (c1 - c0) / r['2xx'] };
  }
  s.child.kill('SIGTERM'); await new Promise((r) => s.child.on('exit', r)); fs.rmSync(s.dir, { recursive: true, force: true });
  return out;
}
const results = { before: [], after: [] };
for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) for (const [name, tree] of Object.entries(trees)) {
  const r = await run(name, tree, 18000 + round * 2 + (name === 'after' ? 1 : 0));
  results[name].push(r);
  console.log(round, name, JSON.stringify(r));
}
const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const what of ['refresh', 'userinfo']) {
  const b = med(results.before.map((r) => r[what].cpuPer)), a = med(results.after.map((r) => r[what].cpuPer));
  console.log(`${what}: server CPU per 2xx, median of 3: before ${b.toFixed(0)} µs, after ${a.toFixed(0)} µs, after/before ${(a / b).toFixed(2)}`);
}
