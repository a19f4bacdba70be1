// Small JSON Schema builders for the documented answers: openapi.ts's, and each API's own (its
// routes' answers and its error body, in its file).
export type Schema = Record<string, unknown>;

export const str = { type: 'string' } as const;
export const int = { type: 'integer' } as const;
export const dateTime = { type: 'string', format: 'date-time' } as const;
export const nullable = (type: string) => ({ type: [type, 'null'] });
export const obj = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({ type: 'object', required, properties });
export const ok = (description: string, schema: Schema) => ({ description, ...schema });
export const noContent = { description: 'No Content', type: 'null' };

/** A route's documented answers: documentation only (a fastify response schema would re-serialize every answer). */
export interface Operation {
  responses: Record<string, Schema>;
  /** The name of a security scheme in openapi.ts. */
  security?: string;
  summary?: string;
}
