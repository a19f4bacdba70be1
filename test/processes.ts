// The server and CLI as real processes, started as an operator starts them (`latchkey …` or
// `npm start`), with their output captured, and what the kernel says of them: shared by the
// suites that test processes and by the bench (bench/server-process.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';

export const ROOT = new URL('..', import.meta.url).pathname;
/** How long to wait for a line we expect, so a broken start fails with its output instead of hanging the suite. */
export const PATIENCE_MS = 60_000;

export interface Running {
  child: ChildProcess;
  /** stdout and stderr together, as they arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves once the output matches. */
  waitFor(pattern: RegExp): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `latchkey <args>` (or `npm start` with npm: true) with the environment given, no TTY. */
export function launch(args: string[], env: Record<string, string>, options: { npm?: boolean } = {}): Running {
  const child = options.npm
    ? spawn('npm', ['start', '--silent'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d) => {
    out += d;
    stdout += d;
    listeners.forEach((l) => l());
  });
  child.stderr!.on('data', (d) => {
    out += d;
    stderr += d;
    listeners.forEach((l) => l());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      listeners.forEach((l) => l());
      resolve({ code, signal });
    }),
  );
  return {
    child,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            cleanup();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} in:\n${out}`));
        }, PATIENCE_MS);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** The JSON log lines of a server's stdout. */
/** Runs a command to its end (SIGKILL past PATIENCE_MS fails the test as a hang). */
export async function runToEnd(args: string[], env: Record<string, string>) {
  const running = launch(args, env);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), PATIENCE_MS);
  const { code, signal } = await running.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `killed: it hung. Output:\n${running.output()}`);
  return { code, stdout: running.stdout(), stderr: running.stderr(), output: running.output() };
}

export const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: number; time: string; msg: string; [k: string]: unknown });


/** A port nothing listens on right now (the kernel's pick), for a server about to start. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The processes `pid` forked (a cluster primary's workers), as the kernel lists them (every thread's children). */
export function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number)
      .sort();
  } catch {
    // Gone, or gone between the listing and the read.
    return [];
  }
}

/** A cluster primary's serving workers: each names itself `latchkey worker N` (as `ps` shows) once it listens. */
export const workersOf = (pid: number): number[] =>
  childrenOf(pid).filter((child) => {
    try {
      return fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith('latchkey worker');
    } catch {
      return false;
    }
  });
