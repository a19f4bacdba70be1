// How a configured URL (DATABASE_URL, REDIS_URL, LATCHKEY_SMTP_URL, LATCHKEY_MIGRATE_FROM…) may be
// shown in a log line or an error: the one place that knows which parts of a URL are secret.

/** Query parameters that carry a credential (libpq's `password`, a token, an API key…). */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|cred|sig/i;

/**
 * `raw` without its user and password, and with the value of every password-like query
 * parameter replaced by `***`. A URL that cannot be parsed is not shown at all: its text may be
 * nothing but a credential.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '(a URL that cannot be parsed)';
  }
  const query = [...url.searchParams].map(([name, value]) => `${encodeURIComponent(name)}=${SECRET_PARAM.test(name) ? '***' : encodeURIComponent(value)}`);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.protocol}//${url.host}${path}${query.length ? `?${query.join('&')}` : ''}`;
}
