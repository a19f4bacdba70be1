// The published APIs Latchkey serves, one row each: the one list of their names, where each is
// mounted, and how each logs in on the wire (which the migration client speaks to an old service
// of that API). A leaf that imports nothing, so config, the core, the migration client and the
// HTTP wiring all read it; src/http/apis.ts attaches each API's routes and error mapping to its row.

/** What a successful login answer carries: its JWTs, and a username named beside them. */
export interface LoginAnswer {
  tokens: unknown[];
  username?: unknown;
}

interface ApiRow {
  name: string;
  /** As OpenAPI tags it. */
  title: string;
  prefix: string;
  /** Where a login is posted ({username, password} as JSON). */
  loginPath: string;
  /** What the login's `username` field holds. */
  loginBy: 'username' | 'email';
  /** The tokens of a 200 login answer; undefined when it is not a login (a challenge, another shape). */
  loginAnswer(body: any): LoginAnswer | undefined;
}

export const APIS = [
  {
    name: 'wikimedia',
    title: 'Wikimedia Enterprise',
    prefix: '/v1',
    loginPath: '/v1/login',
    loginBy: 'username',
    // A challenge (NEW_PASSWORD_REQUIRED) is not a login: the user must finish it where it was asked.
    loginAnswer: (body) => (typeof body?.access_token === 'string' ? { tokens: [body.id_token, body.access_token] } : undefined),
  },
  {
    name: 'roypi',
    title: 'Roypi',
    prefix: '/auth',
    loginPath: '/auth/access_token/',
    loginBy: 'username',
    // Latchkey's Roypi answers access_token; django-rest-framework-jwt answers token.
    loginAnswer: (body) => {
      const token = body?.access_token ?? body?.token;
      return typeof token === 'string' ? { tokens: [token], username: body.user } : undefined;
    },
  },
  {
    name: 'ziik',
    title: 'Ziik',
    prefix: '/api',
    loginPath: '/api/authenticate',
    loginBy: 'email',
    loginAnswer: (body) => (Array.isArray(body) && typeof body[0]?.jwt === 'string' ? { tokens: [body[0].jwt] } : undefined),
  },
] as const satisfies readonly ApiRow[];

export type Api = (typeof APIS)[number];

/** The name of one of the published APIs: the one union of them (a profile, a session's API, a migration's dialect). */
export type ApiName = Api['name'];

export const API_NAMES: readonly ApiName[] = APIS.map((api) => api.name);

/** The row of the API of this name. */
export function apiNamed(name: ApiName): ApiRow {
  return APIS.find((api) => api.name === name)!;
}
