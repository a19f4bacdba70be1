// Who is asking, as the core records it: the client's address and, when it is clean text, its user agent.
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/context.ts';
import { isCleanText } from './control-characters.ts';

export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  // Header bytes above 0x7f arrive as Latin-1, C1 controls included: keep only clean text.
  return { ip: request.ip, userAgent: typeof agent === 'string' && isCleanText(agent) ? agent : undefined };
}
