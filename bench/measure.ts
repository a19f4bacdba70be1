// One scenario's figures: its 2xx rate and latencies under load, as ratios to yardsticks
// measured right before and right after it, with the server's CPU and peak memory.
import os from 'node:os';
import autocannon from 'autocannon';
import { hash, verify } from '@node-rs/argon2';
import { ARGON2 } from '../src/core/passwords.ts';
import { CONNECTIONS, PASSWORD, SECONDS } from './args.ts';
import { ScenarioFailed } from './failure.ts';
import type { Proc } from './server-process.ts';

const load = (options: autocannon.Options, seconds: number) =>
  autocannon({ connections: CONNECTIONS, duration: Math.max(seconds, 0.25), ...options });

/** Answers per second counting 2xx only. */
const okRate = (r: autocannon.Result) => r['2xx'] / r.duration;

export interface Figure {
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

export interface Scenario {
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

export async function measure(store: string, server: Proc, hello: Proc, scenario: Scenario): Promise<Figure> {
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
export async function underLoginStorm(store: string, server: Proc, hello: Proc, login: Scenario, verifyScenario: Scenario): Promise<Figure> {
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
