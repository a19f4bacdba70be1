// What a login looks like in each API: lifetimes, which tokens it carries, extra claims.
// The dialect picks a profile; everything else about a session is the same for all.
import { apiNamed, type ApiName } from '../domain/apis.ts';
import type { Config } from '../platform/config.ts';
import type { User } from '../store/schema.ts';

export interface Profile {
  dialect: ApiName;
  accessTtl: number;
  /** How long the session may be kept alive by refreshing, from login. */
  sessionTtl: number;
  refreshToken: boolean;
  idToken: boolean;
  /** Access tokens one refresh token may mint, when the API caps it. */
  refreshLimit?: number;
  /** How the login name is looked up (the API's row says). */
  loginBy: 'username' | 'email';
  extraClaims(user: User, origIat: number): Record<string, unknown>;
}

const none = () => ({});

export function profiles(config: Config): Record<ApiName, Profile> {
  const l = config.lifetimes;
  return {
    wikimedia: {
      dialect: 'wikimedia',
      accessTtl: l.wikimediaAccessTtl,
      sessionTtl: l.wikimediaRefreshTtl,
      refreshToken: true,
      idToken: true,
      refreshLimit: l.wikimediaRefreshLimit,
      loginBy: apiNamed('wikimedia').loginBy,
      extraClaims: none,
    },
    roypi: {
      dialect: 'roypi',
      accessTtl: l.roypiTokenTtl,
      sessionTtl: l.roypiRefreshWindow,
      refreshToken: false,
      idToken: false,
      loginBy: apiNamed('roypi').loginBy,
      // django-rest-framework-jwt's payload: user_id, username, email, exp, orig_iat.
      extraClaims: (user, origIat) => ({ user_id: user.id, email: user.email ?? '', orig_iat: origIat }),
    },
    ziik: {
      dialect: 'ziik',
      accessTtl: l.ziikTokenTtl,
      sessionTtl: l.ziikSessionTtl,
      refreshToken: false,
      idToken: false,
      loginBy: apiNamed('ziik').loginBy,
      extraClaims: none,
    },
  };
}
