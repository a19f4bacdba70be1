// The operators' tokens (admin, introspection, metrics): checked in constant time, failures throttled.
import type { FastifyRequest } from 'fastify';
import type { Guard } from '../core/guard.ts';
import { safeEqual, sha256 } from '../core/secrets.ts';
import { credentialsFrom } from './authorization.ts';

export type BearerCheck = { ok: true } | { ok: false; /** Seconds, when the client IP is throttled. */ retryAfter?: number };

/**
 * Whether the request carries `Authorization: Bearer <secret>` (an operator's token). Compared as
 * SHA-256 digests, equal in length whatever was sent, so the time taken reveals neither the
 * token nor its length. The right token is always accepted: it is compared before the throttle
 * is even asked, so wrong guesses from a neighbour (the same /64) can never lock its holder out.
 * Only failures are throttled: a client IP (IPv6: its /64) past its wrong guesses gets 429 for
 * every wrong one until the window ends, whatever it sends, with the same body and timing. All a
 * throttled guesser can learn is whether a guess is exactly right, which is what the right token
 * is for, and which a token of 32+ characters (config.ts) makes hopeless to reach by guessing.
 */
export async function checkBearer(request: FastifyRequest, secret: string, guard: Guard): Promise<BearerCheck> {
  const given = credentialsFrom(request, ['Bearer']);
  if (given !== undefined && safeEqual(sha256(given), sha256(secret))) return { ok: true };
  const wait = await guard.operatorTokenWait(request.ip);
  if (wait > 0) return { ok: false, retryAfter: wait };
  if (given === undefined) return { ok: false };
  await guard.operatorTokenFailed(request.ip);
  return { ok: false };
}
