// Small JSON Schema builders for the documented answer shapes (openapi.ts, and each API's error body).
export type Schema = Record<string, unknown>;

export const str = { type: 'string' } as const;
export const int = { type: 'integer' } as const;
export const dateTime = { type: 'string', format: 'date-time' } as const;
export const nullable = (type: string) => ({ type: [type, 'null'] });
export const obj = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({ type: 'object', required, properties });
