// Typed core errors with stable codes. Dialects map `code` to their own status and body
// in one table each; the message here is for logs and the admin API, never a secret.

export type AuthErrorCode =
  | 'invalid_credentials'
  | 'code_mismatch'
  | 'expired_code'
  | 'too_many_attempts'
  | 'token_expired'
  | 'token_invalid'
  | 'token_revoked'
  | 'refresh_expired'
  | 'foreign_session'
  | 'limit_exceeded'
  | 'rate_limited'
  | 'password_policy'
  | 'externally_managed'
  | 'user_disabled'
  | 'password_change_required'
  | 'user_exists'
  | 'user_not_found'
  | 'key_not_found'
  | 'ids_exhausted'
  | 'validation';

export class AuthError extends Error {
  readonly code: AuthErrorCode;
  /** Seconds a client should wait, for rate limits and lockouts. */
  retryAfter?: number;
  /** The request field a validation error is about, when it is about one. */
  field?: string;
  constructor(code: AuthErrorCode, message: string) {
    super(message);
    this.name = 'AuthError';
    this.code = code;
  }
}

const make = (code: AuthErrorCode) => (message: string) => new AuthError(code, message);

export const InvalidCredentials = make('invalid_credentials');
export const CodeMismatch = make('code_mismatch');
export const ExpiredCode = make('expired_code');
export const TokenExpired = make('token_expired');
export const TokenInvalid = make('token_invalid');
export const TokenRevoked = make('token_revoked');
export const RefreshExpired = make('refresh_expired');
/** A session opened by another API: each API renews only its own (ARCHITECTURE.md, "Renewal stays inside its API"). */
export const ForeignSession = make('foreign_session');
export const LimitExceeded = make('limit_exceeded');
export const PasswordPolicy = make('password_policy');
export const ExternallyManaged = make('externally_managed');
export const UserDisabled = make('user_disabled');
export const PasswordChangeRequired = make('password_change_required');
export const UserExists = make('user_exists');
export const UserNotFound = make('user_not_found');
export const KeyNotFound = make('key_not_found');
/** No user id is left at or below 2^53 - 1 (src/core/ids.ts). */
export const IdsExhausted = make('ids_exhausted');

export function TooManyAttempts(message: string, retryAfter?: number): AuthError {
  const error = new AuthError('too_many_attempts', message);
  error.retryAfter = retryAfter;
  return error;
}

export function RateLimited(message: string, retryAfter: number): AuthError {
  const error = new AuthError('rate_limited', message);
  error.retryAfter = retryAfter;
  return error;
}

/** A request that is well-formed but not acceptable; `field` names the field at fault, if one is. */
export function Validation(message: string, field?: string): AuthError {
  const error = new AuthError('validation', message);
  error.field = field;
  return error;
}

export function isAuthError(error: unknown): error is AuthError {
  return error instanceof AuthError;
}

// Defined in a leaf (src/domain/) so the store can raise it without running core code; the
// dialects still read every error the core can meet from this one module.
export { DependencyUnavailable, type Dependency } from '../domain/unavailable.ts';

/** The signing keys at rest cannot be opened with LATCHKEY_KEY_SECRET: the operator must set the right one. */
export class KeySecretMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeySecretMismatch';
  }
}
