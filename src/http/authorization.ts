// Reading the Authorization header: its scheme, and the credentials after a scheme a route accepts.
import type { FastifyRequest } from 'fastify';

/** The scheme of the Authorization header, lowercase (`bearer`, `token`…), if any. */
export function schemeOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === 'string' ? /^\s*(\S+)/.exec(header)?.[1]?.toLowerCase() : undefined;
}

/** The token after `Bearer ` (or another scheme) in Authorization, if any. */
export function credentialsFrom(request: FastifyRequest, schemes: string[]): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match) return undefined;
  return schemes.some((s) => s.toLowerCase() === match[1].toLowerCase()) ? match[2] : undefined;
}
