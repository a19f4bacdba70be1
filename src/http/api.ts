// What one published API's file gives the wiring: its routes, its error mapping, and how OpenAPI
// documents them. src/http/apis.ts attaches one to each row of the table of APIs (src/domain/apis.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../core/index.ts';
import type { Profile } from '../core/profiles.ts';
import type { DialectErrors } from './dialect-errors.ts';
import type { Operation, Schema } from './openapi-shapes.ts';

/** What each API's routes are registered with: the core, and the profile of the API's own row. */
export interface ApiOptions {
  core: Core;
  profile: Profile;
}

export interface HttpApi {
  routes: FastifyPluginAsync<ApiOptions>;
  /** The API's own error mapping, given to its scope by the wiring (dialect-errors.ts). */
  errors: DialectErrors;
  /** Its error body, as OpenAPI documents it (every route's `default` answer). */
  errorBody: Schema;
  /** Its routes' documented answers, by method and path within its prefix (`POST /login`). */
  operations: Record<string, Operation>;
}
