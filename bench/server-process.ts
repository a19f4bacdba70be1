// A server under load as its own process (started as `npm start` starts it), with its memory and
// CPU sampled from /proc over all of its processes (a cluster's primary and workers).
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT, childrenOf, freePort, workersOf } from '../test/processes.ts';
import { ScenarioFailed } from './failure.ts';

/** The server is started exactly as `npm start` starts it: the same node flags, the same entry. */
export const START: string[] = (() => {
  // `exec` makes npm's shell hand its place (and the signals) to node; the command is what follows.
  const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start as string).replace(/^exec\s+/, '');
  const [node, ...argv] = start.split(/\s+/);
  if (node !== 'node') throw new Error(`cannot read npm start: ${node}`);
  return argv;
})();

/** A server process (with its workers, if any), with its resident memory sampled while it runs. */
export class Proc {
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
