// The published APIs Latchkey serves, one row each: the one list of their names, where each is
// mounted, and where each logs in (for migrating from an old service that speaks it). A leaf that
// imports nothing, so config, the core, the migration client and the HTTP wiring all read it;
// src/http/apis.ts attaches each API's routes and error mapping to its row.
export const APIS = [
  { name: 'wikimedia', title: 'Wikimedia Enterprise', prefix: '/v1', loginPath: '/v1/login' },
  { name: 'roypi', title: 'Roypi', prefix: '/auth', loginPath: '/auth/access_token/' },
  { name: 'ziik', title: 'Ziik', prefix: '/api', loginPath: '/api/authenticate' },
] as const;

export type Api = (typeof APIS)[number];

/** The name of one of the published APIs: the one union of them (a profile, a session's API, a migration's dialect). */
export type ApiName = Api['name'];

export const API_NAMES: readonly ApiName[] = APIS.map((api) => api.name);
