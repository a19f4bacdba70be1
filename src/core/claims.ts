// What a checked token says: types only, shared by tokens.ts and the caches it uses.
import type { JWTPayload } from 'jose';

export type TokenUse = 'access' | 'id';

/** Claims whose signature was checked, and the key that signed them (kept, so a remembered token's key is checked without decoding it again). */
export interface SignedClaims {
  claims: Claims;
  kid: string | undefined;
}

export interface Claims extends JWTPayload {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  token_use: TokenUse;
  username: string;
  email?: string;
  /** Roypi: the time of the original login, which bounds refreshing. */
  orig_iat?: number;
  user_id?: number;
}
