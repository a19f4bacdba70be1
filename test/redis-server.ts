// A redis-server of the test's own on a free port, so a test can stop it (SIGSTOP: it accepts
// and never answers), continue it, kill it and start it again, without disturbing any other.
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './helpers.ts';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const haveRedisServer = fs.existsSync(REDIS_SERVER);

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGSTOP: connections are accepted and commands read by the kernel, but nothing answers. */
  pause(): void;
  /** SIGCONT: answers again, everything held included. */
  resume(): void;
  /** SIGKILL, and waits for the exit: every key is gone (no persistence). */
  kill(): Promise<void>;
  /** A new, empty redis-server on the same port. */
  start(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      client.on('error', () => {});
      const up = await client.connect().then(() => true, () => false);
      client.disconnect();
      if (up) return;
      if (i > 50) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pause: () => void child!.kill('SIGSTOP'),
    resume: () => void child!.kill('SIGCONT'),
    async kill() {
      const running = child!;
      if (running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGCONT');
      running.kill('SIGKILL');
      await exited;
    },
    start,
  };
}
