// The live service users are migrated from (LATCHKEY_MIGRATE_FROM): one login, in that service's
// own dialect, to learn whether a password is right. Whatever goes wrong (a refusal, a timeout, an
// error, an answer we cannot read) is simply "not confirmed"; nothing of the answer goes further
// than the identity it names.
import { apiNamed, type LoginAnswer } from '../domain/apis.ts';
import type { MigrateFrom } from '../platform/config.ts';
import type { UpstreamIdentity, UpstreamLogin } from '../core/migration.ts';
import { redactUrl } from '../platform/redact.ts';

/** An answer larger than this is not a login answer. */
const MAX_ANSWER_BYTES = 64 * 1024;

async function readBounded(response: Response): Promise<string | undefined> {
  const reader = response.body?.getReader();
  if (!reader) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The claims of a JWT, unverified: used only to name the user the old service just confirmed. */
function claimsOf(token: unknown): Record<string, unknown> {
  if (typeof token !== 'string') return {};
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? claims : {};
  } catch {
    return {};
  }
}

function identityFrom(...sources: Record<string, unknown>[]): UpstreamIdentity {
  const pick = (...keys: string[]) => {
    for (const source of sources) {
      for (const key of keys) if (typeof source[key] === 'string' && source[key]) return source[key] as string;
    }
    return undefined;
  };
  return { username: pick('username', 'cognito:username', 'preferred_username', 'user'), email: pick('email') };
}

/**
 * The base URL fetch may be given (fetch refuses one with credentials), and the credentials the
 * URL carried as the Basic authorization they stand for.
 */
function splitCredentials(raw: string): { base: string; authorization?: string } {
  const url = new URL(raw);
  if (!url.username && !url.password) return { base: raw };
  // Percent-decoded as a URL's userinfo is; a stray % (not an escape) stands for itself.
  const decoded = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const pair = `${decoded(url.username)}:${decoded(url.password)}`;
  url.username = '';
  url.password = '';
  return { base: url.href.replace(/\/+$/, ''), authorization: `Basic ${Buffer.from(pair, 'utf8').toString('base64')}` };
}

export class OldService implements UpstreamLogin {
  readonly loginBy: 'username' | 'email';
  readonly caseInsensitive: boolean;
  /** Where the old service's API of this dialect logs in (without the URL's credentials). */
  private readonly loginUrl: string;
  private readonly loginAnswer: (body: unknown) => LoginAnswer | undefined;
  private readonly authorization?: string;

  constructor(private readonly from: MigrateFrom) {
    const api = apiNamed(from.dialect);
    const { base, authorization } = splitCredentials(from.url);
    this.loginUrl = base + api.loginPath;
    this.authorization = authorization;
    this.loginAnswer = api.loginAnswer;
    this.loginBy = api.loginBy;
    this.caseInsensitive = from.caseInsensitive;
  }

  /** The old service as it may be logged: never with the credentials its URL may carry. */
  get describe(): string {
    return `${this.from.dialect}+${redactUrl(this.from.url)}`;
  }

  /** The identity the old service confirms for this login and password, or undefined. Never throws. */
  async login(identifier: string, password: string, clientIp?: string): Promise<UpstreamIdentity | undefined> {
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
      // Latchkey is the old service's proxy here: without the client's address, every guess from
      // every client counts against Latchkey's one address there, and a few wrong passwords lock a
      // user out of migrating (the old service must trust Latchkey's address for X-Forwarded-For).
      if (clientIp) headers['x-forwarded-for'] = clientIp;
      if (this.authorization) headers.authorization = this.authorization;
      const response = await fetch(this.loginUrl, {
        method: 'POST',
        headers,
        body: JSON.stringify({ username: identifier, password }),
        // A login answer is never a redirect; following one could send the password elsewhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.from.timeoutMs),
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        return undefined;
      }
      const text = await readBounded(response);
      if (text === undefined) return undefined;
      return this.confirmed(JSON.parse(text));
    } catch {
      return undefined;
    }
  }

  private confirmed(body: unknown): UpstreamIdentity | undefined {
    const answer = this.loginAnswer(body);
    if (!answer) return undefined;
    return identityFrom(...answer.tokens.map(claimsOf), typeof answer.username === 'string' ? { username: answer.username } : {});
  }
}
