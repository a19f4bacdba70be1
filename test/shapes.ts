// The error shapes of each API, as the fuzz and property tests check 4xx answers against them
// (test/fuzz.test.ts proves each refuses `{}` and the other APIs' bodies).
import type { Reply } from './helpers.ts';

/** Whether a 4xx answer is in the endpoint's own error shape; each must refuse `{}` and the wrong dialect's body. */
export type Shape = (body: any, reply: Reply) => boolean;

export const isObject = (b: any) => b !== null && typeof b === 'object' && !Array.isArray(b);
export const isJson = (reply: Reply) => /^application\/json\b/.test(reply.headers.get('content-type') ?? '');
export const strings = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === 'string' && m.length > 0);
export const wikimediaShape: Shape = (b, r) =>
  isJson(r) && isObject(b) && Object.keys(b).sort().join() === 'message,status' && typeof b.message === 'string' && b.status === r.status;
// django-rest-framework: {"detail": "..."}, or one or more fields (non_field_errors among them) each with its messages.
export const roypiShape: Shape = (b, r) =>
  isJson(r) &&
  isObject(b) &&
  Object.keys(b).length > 0 &&
  (Object.keys(b).join() === 'detail' ? typeof b.detail === 'string' && b.detail.length > 0 : Object.values(b).every(strings));
export const keysWithin = (b: object, allowed: string[]) => Object.keys(b).every((k) => allowed.includes(k));
export const ziikShape: Shape = (b, r) =>
  isJson(r) &&
  isObject(b) &&
  keysWithin(b, ['message', 'errors']) &&
  typeof b.message === 'string' &&
  b.message.length > 0 &&
  (r.status === 422 || b.errors !== undefined ? isObject(b.errors) && Object.values(b.errors).every(strings) : true);
export const oauthShape: Shape = (b, r) =>
  isJson(r) && isObject(b) && keysWithin(b, ['error', 'error_description']) && typeof b.error === 'string' && b.error.length > 0;
/** The hosted page answers a person: an HTML page that says what went wrong, never JSON. */
export const htmlPage: Shape = (_b, r) =>
  /^text\/html\b/.test(r.headers.get('content-type') ?? '') && r.text.startsWith('<!doctype html>') && /role="alert"/.test(r.text);
