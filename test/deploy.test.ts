// The deployment files. No container engine runs on the machines the tests run on (only the
// docker client), so the Dockerfile's build stage is run here as plain commands, in order, on a
// clean clone with the same WORKDIR/COPY/ENV meaning; the server it built is then started with
// the runtime stage's ENV and ENTRYPOINT, and the image's own HEALTHCHECK command must pass.
// compose.yaml and the systemd unit are checked for what they promise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { freePort, call, needs } from './helpers.ts';

const ROOT = new URL('..', import.meta.url).pathname;

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  steps: Instruction[];
}

/** The Dockerfile as stages of instructions, continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw) && !pending) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole) lines.push(whole);
  }
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line)!;
    if (op.toUpperCase() === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ name: name ?? String(stages.length), from, steps: [] });
    } else stages.at(-1)!.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** `ENV A=1 B=2` (the only form used) as pairs. */
function envOf(args: string): Record<string, string> {
  return Object.fromEntries([...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map(([, k, v]) => [k, v.replace(/^"|"$/g, '')]));
}

const execForm = (args: string): string[] => JSON.parse(args);

const dockerfile = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const stage = (name: string) => dockerfile.find((s) => s.name === name)!;
const steps = (s: Stage, op: string) => s.steps.filter((i) => i.op === op);
const startScript: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start;

describe('the Dockerfile', () => {
  it('builds in one stage and runs in another, as a non-root user, on 0.0.0.0, with a data volume and a /health healthcheck', () => {
    assert.deepEqual(dockerfile.map((s) => s.name), ['build', 'runtime']);
    const runtime = stage('runtime');
    assert.ok(steps(runtime, 'COPY').every((c) => c.args.startsWith('--from=build ')), 'the runtime stage copies only from the build stage');
    const user = steps(runtime, 'USER').at(-1)?.args;
    assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}`);
    const env = Object.assign({}, ...steps(runtime, 'ENV').map((e) => envOf(e.args)));
    assert.equal(env.HOST, '0.0.0.0');
    assert.equal(env.NODE_ENV, 'production');
    const volumes = steps(runtime, 'VOLUME').flatMap((v) => execForm(v.args));
    assert.deepEqual(volumes, [env.LATCHKEY_DATA_DIR]);
    // The volume is the user's, owner-only, before the USER line takes effect.
    assert.ok(steps(runtime, 'RUN').some((r) => r.args.includes(`chown ${user}:${user} ${env.LATCHKEY_DATA_DIR}`) && r.args.includes(`chmod 700 ${env.LATCHKEY_DATA_DIR}`)));
    const health = steps(runtime, 'HEALTHCHECK')[0]?.args ?? '';
    assert.match(health, /CMD \[.*\/ready/);
    assert.deepEqual(execForm(steps(runtime, 'EXPOSE')[0] ? `[${steps(runtime, 'EXPOSE')[0].args}]` : '[]'), [Number(env.PORT)]);
    // ENTRYPOINT + CMD is `npm start` without npm (so node is PID 1 and gets the signals).
    const command = [...execForm(steps(runtime, 'ENTRYPOINT')[0].args), ...execForm(steps(runtime, 'CMD')[0].args)];
    assert.equal(`exec ${command.join(' ')}`, startScript);
  });

  it('runs on a current LTS Node (24 or later), pinned by digest, in both stages', () => {
    for (const { name, from } of dockerfile) {
      const match = /^node:(\d+)-[a-z]+-slim@sha256:[0-9a-f]{64}$/.exec(from);
      assert.ok(match, `${name}: FROM ${from} is not node:<major>-<debian>-slim@sha256:<digest>`);
      // Node 20 reached its end of life in April 2026; 24 is the LTS line.
      assert.ok(Number(match[1]) >= 24 && Number(match[1]) % 2 === 0, `${name}: node ${match[1]} is not a current LTS`);
    }
    assert.equal(new Set(dockerfile.map((s) => s.from)).size, 1, 'both stages run the same Node');
  });

  it('checks readiness without starting a node process: the probe passes on a ready server, fails on one that is not', async () => {
    const healthcheck = /CMD (\[.*\])$/.exec(steps(stage('runtime'), 'HEALTHCHECK')[0].args)![1];
    const [program, ...args] = execForm(healthcheck);
    assert.notEqual(path.basename(program), 'node', 'a node process every interval costs tens of MB and a core for a moment');
    assert.match(healthcheck, /\/ready\b/);
    const http = await import('node:http');
    let status = 200;
    const probe = http.createServer((request, reply) => {
      reply.statusCode = request.url === '/ready' ? status : 404;
      reply.end('{}');
    });
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    const run = (onPort: number) =>
      new Promise<number | null>((resolve) => spawn(program, args, { env: { PATH: process.env.PATH, PORT: String(onPort) }, stdio: 'ignore' }).on('close', resolve));
    try {
      assert.equal(await run(port), 0, 'ready');
      status = 503;
      assert.notEqual(await run(port), 0, '503 from /ready');
      assert.notEqual(await run(await freePort()), 0, 'nothing listening');
    } finally {
      probe.close();
    }
  });

  it('.dockerignore keeps the developer checkout out of the build context', () => {
    const ignored = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['.git', 'node_modules', 'data', '.cache']) assert.ok(ignored.includes(entry), `${entry} is not ignored`);
  });

  // The build stage compiles better-sqlite3 with the packages it installs, which the README's top
  // does not ask a developer for: without them (outside CI) the suite is skipped, and counted.
  const buildPackages = [...(stage('build').steps.find((i) => i.op === 'RUN' && /^apt-get /.test(i.args))?.args.matchAll(/install (?:-\S+\s+)*([^&]+)/g) ?? [])]
    .flatMap((m) => m[1].trim().split(/\s+/))
    .filter((p) => !p.startsWith('-'));
  const missingBuildPackages = buildPackages.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
  const buildSkip = needs(`the image's build packages are not installed here (${missingBuildPackages.join(' ') || 'dpkg'})`, missingBuildPackages.length === 0 && buildPackages.length > 0);

  describe('its build stage, run command by command on a clean clone', { skip: buildSkip }, () => {
    let work: string;
    before(() => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-docker-'));
    });
    after(() => fs.rmSync(work, { recursive: true, force: true }));

    it('builds a server that starts with the runtime ENV and passes the image HEALTHCHECK', async () => {
      // The build context: a clean clone, less what .dockerignore leaves out.
      const context = path.join(work, 'context');
      execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, context]);
      const ignoredFiles = execFileSync('git', ['ls-files', '--cached', '--ignored', '--exclude-from=.dockerignore'], { cwd: context, encoding: 'utf8' });
      for (const file of ignoredFiles.split('\n').filter(Boolean)) fs.rmSync(path.join(context, file), { force: true });
      fs.rmSync(path.join(context, '.git'), { recursive: true, force: true });

      // Each stage's filesystem is a folder; absolute container paths land inside it.
      const rootOf = (name: string) => path.join(work, 'stages', name);
      const inStage = (name: string, cwd: string, target: string) => path.join(rootOf(name), path.posix.resolve(cwd, target));
      const build = stage('build');
      let cwd = '/';
      const env: Record<string, string> = {};
      for (const { op, args } of build.steps) {
        if (op === 'WORKDIR') {
          cwd = path.posix.resolve(cwd, args);
          fs.mkdirSync(inStage('build', '/', cwd), { recursive: true });
        } else if (op === 'ENV') Object.assign(env, envOf(args));
        else if (op === 'COPY') {
          const parts = args.split(/\s+/);
          const dest = parts.pop()!;
          for (const source of parts) {
            const from = path.join(context, source);
            const to = dest.endsWith('/') || parts.length > 1 ? path.join(inStage('build', cwd, dest), path.basename(source)) : inStage('build', cwd, dest);
            fs.cpSync(from, to, { recursive: true, preserveTimestamps: true });
          }
        } else if (op === 'RUN') {
          if (/^apt-get /.test(args)) {
            // The image's system packages: here they are the machine's, so check they are there.
            const packages = /install (?:-\S+\s+)*([^&]+)/.exec(args)![1].trim().split(/\s+/).filter((p) => !p.startsWith('-'));
            const missing = packages.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
            assert.deepEqual(missing, [], `packages the build stage installs are missing here: ${missing.join(' ')}`);
            continue;
          }
          const result = spawnSync('sh', ['-c', args], {
            cwd: inStage('build', '/', cwd),
            // This machine reaches the npm registry but not GitHub, where prebuilt addons live:
            // npm compiles better-sqlite3 (as the image would without a matching prebuilt one).
            env: { ...process.env, ...env, npm_config_build_from_source: 'true' },
            encoding: 'utf8',
          });
          assert.equal(result.status, 0, `RUN ${args}\n${result.stdout}\n${result.stderr}`);
        } else assert.fail(`the test does not know how to run ${op} in the build stage; teach it`);
      }

      // The runtime stage: what it copies from the build stage, its ENV, and its command.
      const runtime = stage('runtime');
      let runCwd = '/';
      const runEnv: Record<string, string> = {};
      for (const { op, args } of runtime.steps) {
        if (op === 'WORKDIR') runCwd = path.posix.resolve(runCwd, args);
        else if (op === 'ENV') Object.assign(runEnv, envOf(args));
        else if (op === 'COPY') {
          const [, from, source, dest] = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(args)!;
          fs.cpSync(inStage(from, '/', source), inStage('runtime', runCwd, dest), { recursive: true, preserveTimestamps: true });
        }
      }
      const appDir = inStage('runtime', '/', runCwd);
      const port = await freePort();
      const dataDir = path.join(work, 'data');
      const serverEnv = { ...process.env, ...runEnv, PORT: String(port), LATCHKEY_DATA_DIR: dataDir };
      const command = [...execForm(steps(runtime, 'ENTRYPOINT')[0].args), ...execForm(steps(runtime, 'CMD')[0].args)];
      assert.equal(command[0], 'node');
      const server = spawn(process.execPath, command.slice(1), { cwd: appDir, env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      server.stdout!.on('data', (d) => (output += d));
      server.stderr!.on('data', (d) => (output += d));
      const exited = new Promise<number | null>((resolve) => server.once('close', resolve));
      try {
        for (let i = 0; i < 1200 && !output.includes('latchkey ready') && server.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
        assert.match(output, /latchkey ready on http:\/\/0\.0\.0\.0:/, output);
        // JSON logs, as the image's LATCHKEY_LOG_FORMAT asks.
        for (const line of output.trim().split('\n')) JSON.parse(line);
        assert.equal((await call(`http://127.0.0.1:${port}/health`)).status, 200);
        const healthcheck = /CMD (\[.*\])$/.exec(steps(runtime, 'HEALTHCHECK')[0].args)![1];
        const [program, ...probe] = execForm(healthcheck);
        const probed = spawnSync(program, probe, { env: serverEnv, encoding: 'utf8' });
        assert.equal(probed.status, 0, `HEALTHCHECK failed: ${probed.stderr}`);
        server.kill('SIGTERM');
        assert.equal(await exited, 0, output);
      } finally {
        server.kill('SIGKILL');
      }
    });
  });
});

describe('compose.yaml', () => {
  const compose = parseYaml(fs.readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8'));

  it('runs Latchkey on PostgreSQL and Redis, started once both are healthy', () => {
    const { latchkey, postgres, redis } = compose.services;
    assert.equal(latchkey.build, '.');
    for (const [name, service] of [['postgres', postgres], ['redis', redis]]) {
      assert.ok(service.healthcheck?.test, `${name} has no healthcheck`);
      assert.equal(latchkey.depends_on[name].condition, 'service_healthy');
    }
    // The URLs point at the services, with the credentials the PostgreSQL service is given.
    const database = new URL(latchkey.environment.DATABASE_URL);
    assert.equal(database.hostname, 'postgres');
    assert.equal(database.username, postgres.environment.POSTGRES_USER);
    assert.equal(database.password, postgres.environment.POSTGRES_PASSWORD);
    assert.equal(database.pathname, `/${postgres.environment.POSTGRES_DB}`);
    assert.equal(new URL(latchkey.environment.REDIS_URL).hostname, 'redis');
    // Several instances must share the key secret: compose refuses to start without one.
    assert.match(latchkey.environment.LATCHKEY_KEY_SECRET, /^\$\{LATCHKEY_KEY_SECRET:\?/);
    // Docker's SIGTERM grace outlasts the server's own shutdown timeout.
    assert.ok(Number.parseInt(latchkey.stop_grace_period, 10) > 10);
  });
});

describe('deploy/latchkey.service', () => {
  const unit = fs.readFileSync(path.join(ROOT, 'deploy/latchkey.service'), 'utf8');
  const setting = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(unit)?.[1];

  it('runs what `npm start` runs, as its own user, hardened, with time to drain', () => {
    assert.equal(`exec ${setting('ExecStart')!.replace(/^\/usr\/bin\/node/, 'node')}`, startScript);
    assert.equal(setting('User'), 'latchkey');
    for (const [name, value] of [
      ['NoNewPrivileges', 'true'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'true'],
      ['PrivateTmp', 'true'],
      ['StateDirectoryMode', '0700'],
      ['CapabilityBoundingSet', ''],
    ]) {
      assert.equal(setting(name), value, name);
    }
    assert.ok(Number(setting('TimeoutStopSec')) > 10);
  });

  it('writes only directories systemd makes for it on a clean host: its state and the bundle cache', () => {
    // A ReadWritePaths= directory that does not exist stops the unit from starting (and no step makes one).
    assert.equal(setting('ReadWritePaths'), undefined);
    assert.equal(setting('StateDirectory'), 'latchkey');
    assert.equal(setting('CacheDirectory'), 'latchkey');
    assert.equal(setting('CacheDirectoryMode'), '0700');
    assert.match(setting('Environment')!, /(^| )LATCHKEY_DATA_DIR=\/var\/lib\/latchkey( |$)/);
  });

  it('bin/latchkey.js builds its bundle in the cache directory systemd names, and the bundle still finds the install', async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cache-'));
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-data-'));
    try {
      // systemd's CacheDirectory= sets CACHE_DIRECTORY for the service.
      const env = { ...process.env, CACHE_DIRECTORY: cache, LATCHKEY_DATA_DIR: data, LOG_LEVEL: 'silent' };
      const version = spawnSync(process.execPath, [path.join(ROOT, 'bin/latchkey.js'), '--version'], { cwd: os.tmpdir(), env, encoding: 'utf8' });
      assert.equal(version.status, 0, version.stderr);
      assert.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
      assert.ok(fs.readdirSync(cache).some((f) => /^latchkey-[0-9a-f]+\.mjs$/.test(f)), `no bundle in ${cache}`);
      // The default data dir, from a bundle outside the install, is still the install's.
      const { CACHE_DIRECTORY: _, LATCHKEY_DATA_DIR: __, ...noData } = env;
      const list = spawnSync(process.execPath, [path.join(ROOT, 'bin/latchkey.js'), 'users', 'list'], { cwd: os.tmpdir(), env: { ...noData, CACHE_DIRECTORY: cache, LOG_LEVEL: 'info', DATABASE_URL: '' }, encoding: 'utf8' });
      assert.ok(list.stderr.includes(`sqlite:${path.join(ROOT, 'data', 'latchkey.sqlite')}`), list.stderr);
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
      fs.rmSync(data, { recursive: true, force: true });
    }
  });

  it('is a valid unit to systemd-analyze, where it is installed', { skip: needs('systemd-analyze is not installed', spawnSync('systemd-analyze', ['--version']).status === 0) }, () => {
    const result = spawnSync('systemd-analyze', ['verify', path.join(ROOT, 'deploy/latchkey.service')], { encoding: 'utf8' });
    // It may warn that the user or paths do not exist on this machine; a syntax error fails.
    assert.doesNotMatch(result.stderr, /Unknown key|Invalid|Failed to parse|Unknown section/i, result.stderr);
  });
});

describe('npm test on a fresh clone', () => {
  // The README's top names Node.js and nothing else: no test may need Django, passlib, PHP or
  // htpasswd. Their hashes are committed fixtures; .ci/run regenerates them with the real tools
  // and checks that the fresh ones verify too.
  const tests = fs.readdirSync(path.join(ROOT, 'test')).filter((f) => f.endsWith('.test.ts'));

  it('runs no foreign hashing tool: the hashes they made are committed fixtures', () => {
    for (const file of tests) {
      const text = fs.readFileSync(path.join(ROOT, 'test', file), 'utf8');
      assert.doesNotMatch(text, /tools\/real-hashes|['"](?:\/usr\/bin\/)?(?:python3|php|htpasswd)['"]/, `${file} runs a foreign tool`);
    }
    const fixtures = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/foreign-hashes.json'), 'utf8'));
    assert.ok(fixtures.hashes.length > 0);
    for (const entry of fixtures.hashes) {
      for (const field of ['name', 'tool', 'version', 'password', 'hash']) assert.equal(typeof entry[field], 'string', `${entry.name}: ${field}`);
    }
  });

  it('CI regenerates the fixtures with the real tools and checks that the fresh hashes verify', () => {
    const ci = fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
    const made = /test\/tools\/make-foreign-hash-fixtures\.ts "?(\$\w+)"?/.exec(ci);
    assert.ok(made, '.ci/run does not regenerate the fixtures');
    assert.match(ci, new RegExp(`test/tools/check-foreign-hash-fixtures\\.ts "?\\${made[1]}"?`), '.ci/run does not check the regenerated fixtures');
  });

  it('CI runs the suite once more with its files shuffled, after npm test, in an order its printed seed replays', () => {
    const ci = fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
    const npmTest = ci.search(/^npm test$/m);
    const shuffled = ci.search(/^node test\/tools\/shuffled\.mjs$/m);
    assert.ok(npmTest >= 0 && shuffled > npmTest, '.ci/run does not run test/tools/shuffled.mjs after npm test');
    const order = (seed: string) => {
      const run = spawnSync(process.execPath, ['test/tools/shuffled.mjs', '--list'], { cwd: ROOT, env: { ...process.env, SHUFFLE_SEED: seed }, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      return run.stdout.trim().split('\n');
    };
    const first = order('1');
    assert.deepEqual([...first].sort(), tests.map((file) => `test/${file}`).sort(), 'every test file, once');
    assert.deepEqual(order('1'), first, 'the same seed, the same order');
    assert.notDeepEqual(order('2'), first, 'another seed, another order');
  });
});

describe('README: running in production', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it('several instances share every secret a database was set up with: LATCHKEY_SECRET as well as LATCHKEY_KEY_SECRET', () => {
    const bullet = /^- Several instances:[\s\S]*?(?=^- )/m.exec(readme)?.[0] ?? '';
    assert.match(bullet, /`LATCHKEY_KEY_SECRET`/);
    assert.match(bullet, /`LATCHKEY_SECRET`/);
  });

  it('names the Node versions: what package.json allows, what CI tests on, what the image runs', () => {
    const engines = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).engines.node;
    const top = readme.slice(0, readme.indexOf('\n## '));
    assert.ok(top.includes(`Node.js ${engines.replace(/^>=/, '')} or newer`), 'the engines range');
    assert.match(top, new RegExp(`tested in CI on Node ${process.versions.node.split('.')[0]}\\b`));
    const imageMajor = /^node:(\d+)-/.exec(dockerfile[0].from)![1];
    assert.match(top, new RegExp(`image runs Node ${imageMajor}\\b`));
  });

  it('says what to supervise: node itself, since a SIGKILL of npm does not reach the server', () => {
    assert.match(readme, /SIGKILL/);
    assert.doesNotMatch(readme, /`npm start` execs\s+node, so the signal reaches it/);
  });
});
