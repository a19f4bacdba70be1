// Roypi's scheme, `Authorization: Token <jwt>`, and django-rest-framework-jwt's words for why a
// token or login fails: Roypi's own routes answer in them, and so do /userinfo and /forward-auth
// when a request comes in that scheme.
import type { AuthError, AuthErrorCode } from '../core/errors.ts';
import type { ErrorReply } from './dialect-errors.ts';

/** django-rest-framework-jwt's words for why a login or token fails: the body of a 400, or the `detail` of a 401. */
export const REASONS: Partial<Record<AuthErrorCode, string>> = {
  invalid_credentials: 'Unable to log in with provided credentials.',
  user_disabled: 'User account is disabled.',
  token_expired: 'Signature has expired.',
  token_invalid: 'Error decoding signature.',
  token_revoked: 'Token has been revoked.',
  refresh_expired: 'Refresh has expired.',
  foreign_session: 'Token was not issued by this API.',
  user_not_found: "User doesn't exist.",
};

/**
 * What a protected route answers a request in the Roypi scheme (`Authorization: Token …`) that
 * it cannot accept: 401 `{"detail"}` with the Token challenge, on /auth/user/, /userinfo and /forward-auth.
 */
export function tokenSchemeRefusal(error?: AuthError): ErrorReply | undefined {
  const detail = error === undefined ? 'Authentication credentials were not provided.' : REASONS[error.code];
  if (!detail) return undefined;
  return { status: 401, body: { detail }, headers: { 'www-authenticate': 'Token realm="api"' } };
}
