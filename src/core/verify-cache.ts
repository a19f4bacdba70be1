// What online verification remembers between requests: the claims of tokens whose signature
// was already checked (keyed by a hash of the token, never the token), and the session and
// user a decision needs. The store announces every committed change to sessions, users and
// keys (src/store/changes.ts), here and on every other instance; entries they may have made
// stale are dropped at once.
import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Session, User } from '../store/schema.ts';
import type { Change } from '../store/changes.ts';
import type { SignedClaims } from './claims.ts';

export interface SessionState {
  session: Session;
  user: User;
}

export interface VerifyCacheOptions {
  /** Most entries of each kind; 0 turns the cache off. */
  maxEntries: number;
  /** A session or user read from the store is re-read after this long, whatever was announced. */
  maxAgeMs: number;
}

export class VerifyCache {
  private readonly claims?: LRUCache<string, SignedClaims>;
  private readonly sessions?: LRUCache<string, SessionState>;
  /** Cached session ids per user, so a change to a user drops exactly their sessions. */
  private readonly sessionsOfUser = new Map<number, Set<string>>();
  /**
   * Bumped by every change. A read that began before a change may have seen the row as it was;
   * its result is used but not kept.
   */
  private generation = 0;

  constructor(options: VerifyCacheOptions) {
    if (options.maxEntries <= 0) return;
    this.claims = new LRUCache({ max: options.maxEntries });
    this.sessions = new LRUCache({
      max: options.maxEntries,
      ttl: options.maxAgeMs,
      dispose: (state, sid) => this.unindex(state.user.id, sid),
    });
  }

  private unindex(userId: number, sid: string) {
    const sids = this.sessionsOfUser.get(userId);
    sids?.delete(sid);
    if (sids?.size === 0) this.sessionsOfUser.delete(userId);
  }

  /** The claims of a token whose signature, issuer and audience were checked; expiry is the caller's. */
  async tokenClaims(token: string, check: () => Promise<SignedClaims>): Promise<SignedClaims> {
    if (!this.claims) return check();
    const key = crypto.createHash('sha256').update(token).digest('base64url');
    const hit = this.claims.get(key);
    if (hit) return hit;
    const generation = this.generation;
    const signed = await check();
    if (generation === this.generation) this.claims.set(key, signed);
    return signed;
  }

  /** A session with its user, as `load` reads it from the store; a missing one is never kept. */
  async session(sid: string, load: () => Promise<SessionState | undefined>): Promise<SessionState | undefined> {
    if (!this.sessions) return load();
    const hit = this.sessions.get(sid);
    if (hit) return hit;
    const generation = this.generation;
    const state = await load();
    if (state && generation === this.generation) {
      this.sessions.set(sid, state);
      let sids = this.sessionsOfUser.get(state.user.id);
      if (!sids) this.sessionsOfUser.set(state.user.id, (sids = new Set()));
      sids.add(sid);
    }
    return state;
  }

  /** Drops what the changes may have made stale. */
  readonly forget = (changes: readonly Change[]): void => {
    this.generation++;
    for (const change of changes) {
      switch (change.of) {
        case 'session':
          this.sessions?.delete(change.id);
          break;
        case 'user':
          for (const sid of [...(this.sessionsOfUser.get(change.id) ?? [])]) this.sessions?.delete(sid);
          break;
        case 'sessions':
        case 'users':
          this.sessions?.clear();
          break;
        case 'keys':
          // A key may have been retired: every token must be checked against the keys again.
          this.claims?.clear();
          break;
      }
    }
  };

  get size() {
    return { claims: this.claims?.size ?? 0, sessions: this.sessions?.size ?? 0 };
  }

  /** The keys remembered (hashes of tokens, session ids), so a test can see no raw token is kept. */
  keys(): { claims: string[]; sessions: string[] } {
    return { claims: [...(this.claims?.keys() ?? [])], sessions: [...(this.sessions?.keys() ?? [])] };
  }
}
