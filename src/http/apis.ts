// The table of APIs (src/domain/apis.ts) with each row's HTTP half attached: its routes, its error
// mapping and its documentation. The wiring (src/app/app.ts) and OpenAPI read this one list; the
// compiler refuses a row without its HTTP half.
import { APIS, type Api, type ApiName } from '../domain/apis.ts';
import type { HttpApi } from './api.ts';
import { roypiApi } from './roypi.ts';
import { wikimediaApi } from './wikimedia.ts';
import { ziikApi } from './ziik.ts';

const HTTP: Record<ApiName, HttpApi> = { wikimedia: wikimediaApi, roypi: roypiApi, ziik: ziikApi };

export const HTTP_APIS: readonly (Api & HttpApi)[] = APIS.map((api) => ({ ...api, ...HTTP[api.name] }));
