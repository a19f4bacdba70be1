// The server and CLI as real processes, started as an operator starts them (`latchkey …` or
// `npm start`), with their output captured: shared by the suites that test processes.
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
export const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: number; time: string; msg: string; [k: string]: unknown });

