// Each store's run: seeded in bulk first, then the server started on it and every scenario
// measured in turn (logins, verifications, refreshes, renewals, the JWKS, and verification
// during a login storm).
import type autocannon from 'autocannon';
import { Store } from '../src/store/store.ts';
import { hashPassword } from '../src/core/passwords.ts';
import { seedStore, type SeededLogin } from './seed.ts';
import { hotPathPlans, type PathPlan } from './hot-paths.ts';
import { args, PASSWORD, SESSIONS, USERS, WORKERS } from './args.ts';
import { ScenarioFailed } from './failure.ts';
import { Proc, START } from './server-process.ts';
import { measure, underLoginStorm, type Figure, type Scenario } from './measure.ts';

async function json(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const parsed = (await response.json().catch(() => undefined)) as any;
  if (!response.ok) throw new ScenarioFailed(`setup: ${url} answered ${response.status} ${JSON.stringify(parsed)}`);
  return parsed;
}

const post = (url: string, body: unknown): autocannon.Options => ({
  url,
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export interface StoreRun {
  name: string;
  figures: Figure[];
  peakRss: number;
  seeding: Seeding;
}

export interface Seeding {
  logins: SeededLogin[];
  seconds: number;
  plans: PathPlan[];
}

const storeOf = (storeEnv: Record<string, string>) => Store.open({ databaseUrl: storeEnv.DATABASE_URL || undefined, dataDir: storeEnv.LATCHKEY_DATA_DIR });

/** Seeds a fresh store with USERS users and 2 x USERS sessions, before any server opens it; with --plans, explains the hot paths on it. */
export async function seed(name: string, storeEnv: Record<string, string>): Promise<Seeding> {
  const store = storeOf(storeEnv);
  try {
    await store.migrate();
    const passwordHash = await hashPassword(PASSWORD);
    const started = performance.now();
    const elapsed = () => ((performance.now() - started) / 1000).toFixed(1);
    let shown = 0;
    const logins = await seedStore(store, {
      users: USERS,
      passwordHash,
      keep: SESSIONS,
      onProgress: ({ users, sessions }) => {
        if (users < USERS && users < shown + USERS / 10) return;
        shown = users;
        console.error(`  ${name}: seeded ${users.toLocaleString('en')} users, ${sessions.toLocaleString('en')} sessions (${elapsed()} s)`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    if (logins.length === 0) throw new ScenarioFailed('seeding kept no login to bench with');
    const plans = args.plans ? await hotPathPlans(store, logins[0]) : [];
    return { logins, seconds, plans };
  } finally {
    await store.close();
  }
}

export async function benchStore(name: string, storeEnv: Record<string, string>, hello: Proc, seeding: Seeding): Promise<StoreRun> {
  const server = await Proc.start(START, {
    ...storeEnv,
    LOG_LEVEL: 'warn',
    // Throughput, not the limits: one user logs in and refreshes from every connection at once.
    LATCHKEY_IP_RATE_LIMIT: '100000000',
    LATCHKEY_WIKIMEDIA_REFRESH_LIMIT: '100000000',
    LATCHKEY_LOCKOUT_THRESHOLD: '100000000',
    LATCHKEY_ACCOUNT_SLOWDOWN_AFTER: '100000000',
    LATCHKEY_WORKERS: String(WORKERS),
  }, '/health', WORKERS);
  const overall = server.watchRss();
  const figures: Figure[] = [];
  let peakRss = 0;
  try {
    const base = server.url;
    // One of the seeded users, somewhere in the table, logs in, verifies and renews.
    const { username, email } = seeding.logins[0];
    const v1 = await json(`${base}/v1/login`, { username, password: PASSWORD });
    const roypi = (await json(`${base}/auth/access_token/`, { username, password: PASSWORD })).access_token as string;
    const ziik = (await json(`${base}/api/authenticate`, { username: email, password: PASSWORD }))[0].jwt as string;
    // Many seeded users' sessions refreshing, as in production, rather than one row every request fights over.
    const refreshing = seeding.logins;
    let next = 0;
    const refreshBody = () => {
      const { username: owner, refreshToken } = refreshing[next++ % refreshing.length];
      return JSON.stringify({ username: owner, refresh_token: refreshToken });
    };

    const login: Scenario = {
      name: 'POST /v1/login (argon2id)',
      options: post(`${base}/v1/login`, { username, password: PASSWORD }),
      check: (s, b) => s === 200 && typeof b?.access_token === 'string',
      hashBound: true,
    };
    const userinfo: Scenario = {
      name: 'GET /userinfo',
      options: { url: `${base}/userinfo`, headers: { authorization: `Bearer ${v1.access_token}` } },
      check: (s, b) => s === 200 && b?.username === username,
    };
    const scenarios: Scenario[] = [
      userinfo,
      {
        name: 'POST /auth/verify_token/',
        options: post(`${base}/auth/verify_token/`, { token: roypi }),
        check: (s, b) => s === 200 && b?.user?.username === username,
      },
      {
        name: 'GET /forward-auth',
        options: { url: `${base}/forward-auth`, headers: { authorization: `Bearer ${ziik}` } },
        check: (s) => s === 200,
      },
      {
        name: `POST /v1/token-refresh (${refreshing.length} sessions)`,
        options: {
          url: `${base}/v1/token-refresh`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          requests: [{ method: 'POST', setupRequest: (request) => ({ ...request, body: refreshBody() }) }],
        },
        check: (s, b) => s === 200 && typeof b?.access_token === 'string' && typeof b?.id_token === 'string',
      },
      {
        name: 'GET /api/renew',
        options: { url: `${base}/api/renew`, headers: { authorization: `Bearer ${ziik}` } },
        check: (s, b) => s === 200 && typeof b?.[0]?.jwt === 'string',
      },
      login,
      {
        name: 'GET /.well-known/jwks.json',
        options: { url: `${base}/.well-known/jwks.json` },
        check: (s, b) => s === 200 && Array.isArray(b?.keys) && b.keys.length > 0,
      },
    ];
    for (const scenario of scenarios) {
      const figure = await measure(name, server, hello, scenario);
      figures.push(figure);
      console.error(`  ${name} ${scenario.name}: ${figure.failed ? `FAILED ${figure.failed}` : `${figure.rps.toFixed(0)}/s`}`);
    }
    figures.push(await underLoginStorm(name, server, hello, login, userinfo));
  } finally {
    peakRss = overall();
    await server.stop();
  }
  return { name, figures, peakRss, seeding };
}
