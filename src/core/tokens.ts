// JWT minting and checking. Signature, issuer, audience and expiry only; whether the
// session behind a token is still alive is sessions.ts's business.
import { jwtVerify, decodeProtectedHeader, errors as joseErrors, type JWTPayload } from 'jose';
import type { KeyRing } from './keys.ts';
import { TokenExpired, TokenInvalid } from './errors.ts';
import { randomId } from './secrets.ts';
import { signCompact } from './jws.ts';
import type { VerifyCache } from './verify-cache.ts';
import type { Claims, SignedClaims, TokenUse } from './claims.ts';

// The claim types live in claims.ts (types only), so the modules tokens.ts uses can name them without a cycle.
export type { TokenUse, SignedClaims, Claims } from './claims.ts';

export interface MintRequest {
  use: TokenUse;
  userId: number;
  username: string;
  sessionId: string;
  ttlSeconds: number;
  extra?: Record<string, unknown>;
  /** Epoch ms the token is issued at; now by default. A login's first tokens share its session's time. */
  issuedAtMs?: number;
}

export interface Minted {
  token: string;
  claims: Claims;
}

function kidOf(token: string): string | undefined {
  try {
    return decodeProtectedHeader(token).kid;
  } catch {
    throw TokenInvalid('The token is not valid.');
  }
}

export class TokenService {
  constructor(
    private readonly keys: KeyRing,
    private readonly options: { issuer: string; audience: string; clock: () => number; cache?: VerifyCache },
  ) {}

  async mint(request: MintRequest): Promise<Minted> {
    const key = await this.keys.signingKey();
    const iat = Math.floor((request.issuedAtMs ?? this.options.clock()) / 1000);
    const claims: Claims = {
      ...request.extra,
      iss: this.options.issuer,
      aud: this.options.audience,
      sub: String(request.userId),
      iat,
      exp: iat + request.ttlSeconds,
      jti: randomId(),
      sid: request.sessionId,
      token_use: request.use,
      username: request.username,
    };
    const token = signCompact({ alg: key.alg, kid: key.kid, typ: 'JWT' }, claims, key.privateKey);
    return { token, claims };
  }

  /**
   * Checks signature, issuer, audience, expiry and the expected use; throws TokenExpired or
   * TokenInvalid. A token whose signature was checked once is not checked again while it lives.
   */
  async verify(token: unknown, use: TokenUse = 'access'): Promise<Claims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw TokenInvalid('The token is not valid.');
    }
    const { claims, kid } = this.options.cache ? await this.options.cache.tokenClaims(token, () => this.checkSignature(token)) : await this.checkSignature(token);
    // A remembered signature may be by a key withdrawn, or past its retention, since it was checked.
    if (this.options.cache && !(await this.keys.stillVerifies(kid))) throw TokenInvalid('The token is not valid.');
    // jose's rule, applied again to a remembered token: expired once `exp` is not in the future.
    if (claims.exp <= Math.floor(this.options.clock() / 1000)) throw TokenExpired('The token has expired.');
    if (claims.token_use !== use) throw TokenInvalid('The token is not valid.');
    return claims;
  }

  private async checkSignature(token: string): Promise<SignedClaims> {
    const kid = kidOf(token);
    const found = await this.keys.verificationKey(kid);
    if (!found) throw TokenInvalid('The token is not valid.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, found.key, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: [found.alg],
        currentDate: new Date(this.options.clock()),
        requiredClaims: ['sub', 'sid', 'exp', 'iat', 'jti'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw TokenExpired('The token has expired.');
      throw TokenInvalid('The token is not valid.');
    }
    return { claims: payload as Claims, kid };
  }
}
