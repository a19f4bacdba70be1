// How the server process starts. Password hashing runs on libuv's thread pool, sized to the cores by bin/threadpool.cjs, which
// `npm start` and the bench preload: in an ES module entry the pool has already started (at
// libuv's default of 4) before any of our code could set UV_THREADPOOL_SIZE.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

// Starts the pool (a file read), then counts the process's threads.
const COUNT_THREADS = `import fs from 'node:fs'; await fs.promises.readFile('/etc/hostname'); console.log(JSON.stringify({ size: process.env.UV_THREADPOOL_SIZE ?? null, threads: fs.readdirSync('/proc/self/task').length }));`;

async function probe(preload: boolean, env: Record<string, string | undefined> = {}) {
  const args = [...(preload ? ['-r', './bin/threadpool.cjs'] : []), '--input-type=module', '-e', COUNT_THREADS];
  const { stdout } = await run(process.execPath, args, { env: { ...process.env, UV_THREADPOOL_SIZE: undefined, ...env } });
  return JSON.parse(stdout) as { size: string | null; threads: number };
}

describe('thread pool sizing', () => {
  it('sizes the pool to the cores before it starts, and keeps an operator-set size', async () => {
    const cores = Math.max(2, os.availableParallelism());
    const sized = await probe(true);
    assert.equal(sized.size, String(cores));
    const one = await probe(false, { UV_THREADPOOL_SIZE: '1' });
    // The pool really has that many threads: one thread per pool slot more than a pool of one.
    assert.equal(sized.threads - one.threads, cores - 1);
    assert.equal((await probe(true, { UV_THREADPOOL_SIZE: '7' })).size, '7');
  });

  it('runs the pool threads nicer than the event loop, so a verification never waits behind a hash for a core', async () => {
    // After the pool's first job, each thread's nice value (field 19 of /proc/self/task/<tid>/stat).
    const NICE = `import fs from 'node:fs'; await fs.promises.readFile('/etc/hostname'); await new Promise((r) => setTimeout(r, 200));
      const nice = (tid) => Number(fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ')[16]);
      const tids = fs.readdirSync('/proc/self/task');
      console.log(JSON.stringify({ loop: nice(process.pid), niced: tids.filter((t) => nice(t) !== nice(process.pid)).map(nice) }));`;
    const niceness = async (env: Record<string, string | undefined>, processNice = 0) => {
      const { stdout } = await run('nice', ['-n', String(processNice), process.execPath, '-r', './bin/threadpool.cjs', '--input-type=module', '-e', NICE], { env: { ...process.env, ...env } });
      return JSON.parse(stdout) as { loop: number; niced: number[] };
    };
    assert.deepEqual(await niceness({ UV_THREADPOOL_SIZE: '3', LATCHKEY_POOL_NICENESS: undefined }), { loop: 0, niced: [10, 10, 10] });
    assert.deepEqual(await niceness({ UV_THREADPOOL_SIZE: '2', LATCHKEY_POOL_NICENESS: '5' }), { loop: 0, niced: [5, 5] });
    assert.deepEqual(await niceness({ UV_THREADPOOL_SIZE: '2', LATCHKEY_POOL_NICENESS: '0' }), { loop: 0, niced: [] });
    // Relative to the process's own (a unit file's Nice=): the pool never ends up favoured over the loop.
    assert.deepEqual(await niceness({ UV_THREADPOOL_SIZE: '2', LATCHKEY_POOL_NICENESS: undefined }, 3), { loop: 3, niced: [13, 13] });
  });

  it('npm start and the bench preload it', () => {
    const scripts = JSON.parse(fs.readFileSync('package.json', 'utf8')).scripts;
    // exec: npm's shell gives its place to node, so signals sent to `npm start` reach the server.
    assert.match(scripts.start, /^exec node -r \.\/bin\/threadpool\.cjs /);
    assert.match(scripts.bench, /^node -r \.\/bin\/threadpool\.cjs /);
  });
});

describe('the latchkey entry point', () => {
  it('runs the sources from one esbuild bundle, built once and reused until a source changes', async () => {
    const { stdout } = await run(process.execPath, ['bin/latchkey.js', '--version']);
    assert.equal(stdout.trim(), JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
    const bundles = () => fs.readdirSync('.cache').filter((f) => f.endsWith('.mjs')).map((f) => [f, fs.statSync(`.cache/${f}`).mtimeMs].join(':'));
    const first = bundles();
    assert.ok(first.length >= 1, 'a bundle in .cache');
    await run(process.execPath, ['bin/latchkey.js', '--version']);
    assert.deepEqual(bundles(), first, 'reused, not rebuilt');
    // No module loader thread beside the server: npm start runs the bundle, not tsx.
    assert.match(JSON.parse(fs.readFileSync('package.json', 'utf8')).scripts.start, / bin\/latchkey\.js serve$/);
  });
});

describe('the latchkey entry point in a read-only install', () => {
  it('falls back to running the sources through tsx when it cannot write its bundle', async () => {
    const root = fs.mkdtempSync(`${os.tmpdir()}/latchkey-readonly-`);
    try {
      fs.mkdirSync(`${root}/bin`);
      fs.copyFileSync('bin/latchkey.js', `${root}/bin/latchkey.js`);
      fs.copyFileSync('package.json', `${root}/package.json`);
      fs.symlinkSync(fs.realpathSync('src'), `${root}/src`);
      fs.symlinkSync(fs.realpathSync('node_modules'), `${root}/node_modules`);
      fs.writeFileSync(`${root}/.cache`, 'not a directory'); // no bundle can be written under it
      const { stdout } = await run(process.execPath, [`${root}/bin/latchkey.js`, '--version']);
      assert.equal(stdout.trim(), JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
      assert.equal(fs.readFileSync(`${root}/.cache`, 'utf8'), 'not a directory');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('npm start under a supervisor', () => {
  it('kill -9 of `npm start` leaves no server behind: the server stops once npm is gone', async () => {
    const { freshStore, freePort } = await import('./helpers.ts');
    const { launch } = await import('./processes.ts');
    const net = await import('node:net');
    const store = await freshStore({ name: 'sqlite' });
    const port = await freePort();
    const running = launch([], { ...store.env, PORT: String(port), LOG_LEVEL: 'info' }, { npm: true });
    const answers = () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
        socket.on('error', () => resolve(false));
      });
    let server: number | undefined;
    try {
      await running.waitFor(/latchkey ready/);
      const npm = running.child.pid!;
      // npm runs the script in a shell that execs node: the server is npm's child.
      server = Number(fs.readFileSync(`/proc/${npm}/task/${npm}/children`, 'utf8').trim().split(' ')[0]);
      assert.ok(server > 0);
      process.kill(npm, 'SIGKILL');
      const until = Date.now() + 15_000;
      while ((await answers()) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await answers(), false, `the server still serves port ${port} after npm was killed:\n${running.output()}`);
      await running.exited;
      assert.match(running.output(), /shutting down/);
    } finally {
      if (server) {
        try {
          process.kill(server, 'SIGKILL');
        } catch {}
      }
      await store.drop();
    }
  });
});
