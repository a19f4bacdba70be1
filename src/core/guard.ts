// Who may try a password or a code, and how often: the limits on every unauthenticated path.
//
// An attacker must not be able to lock a victim out, so the hard limits are per client IP and
// per (account, IP): one attacking address spends only its own budget. The account as a whole
// has a softer limit: past a high number of failures from everywhere, each further attempt
// waits a growing delay, so a distributed guesser is slowed without ever locking the account
// for long. A request refused by a limit is refused before anything is counted against the
// account, so it never spends the victim's budget. Unknown login names are counted like
// accounts (by a hash of the name), so the answers never tell who exists.
import type { Limits, Tally } from '../limits/limits.ts';
import { secondsUntil } from '../limits/limits.ts';
import type { User } from '../store/schema.ts';
import { RateLimited, TooManyAttempts } from './errors.ts';
import { sha256 } from './secrets.ts';
import { limitKeyOf } from '../limits/client-key.ts';

export interface GuardSettings {
  /** Requests per minute per client IP, on every unauthenticated credential and recovery path. */
  ipRateLimit: number;
  /** Failed password checks per (account, IP) before that IP is locked out of the account. */
  lockoutThreshold: number;
  lockoutSeconds: number;
  /** Failed password checks per account, from anywhere, before each attempt waits a growing delay. */
  accountSlowdownAfter: number;
  accountWindowSeconds: number;
  /** Longest delay between two password checks of one account, seconds. */
  accountMaxDelay: number;
  /** Reset mails per hour: per (account, IP), per IP, and per account. */
  resetMailsPerAccountIp: number;
  resetMailsPerIp: number;
  resetMailsPerAccount: number;
  /** Wrong reset codes per (account, IP) within a code's lifetime. */
  codeAttemptsPerIp: number;
  codeWindowSeconds: number;
}

/** A login name as the limits know it: the account's id, or a hash of a name nobody has. */
export type AccountKey = string & { readonly __account: unique symbol };

export const accountOf = (user: Pick<User, 'id'> | undefined, loginName: string): AccountKey =>
  (user ? `u:${user.id}` : `n:${sha256(loginName).slice(0, 32)}`) as AccountKey;

const HOUR = 3600;
/** Wrong admin, introspection or metrics tokens one client IP may present in 15 minutes. */
export const OPERATOR_TOKEN_GUESSES = 10;
const NO_IP = '-';
/** What a client address is counted under: IPv6 by its /64 (see src/limits/client-key.ts). */
export const clientKey = (ip: string | undefined) => (ip ? limitKeyOf(ip) : NO_IP);

export interface LockState {
  locked: boolean;
  /** ISO time the account takes password checks again, when locked. */
  locked_until: string | null;
  /** Failed password checks counted against the account in its current window. */
  failures: number;
  /** Client addresses (IPv6: /64 prefixes) locked out of this account, and until when. */
  locked_ips: { ip: string; until: string }[];
}

export class Guard {
  private readonly ip;
  private readonly loginIp;
  private readonly loginAccount;
  private readonly mailIp;
  private readonly mailFrom;
  private readonly mailAccount;
  private readonly codeIp;
  private readonly operatorToken;

  constructor(
    private readonly limits: Limits,
    private readonly settings: GuardSettings,
  ) {
    const s = settings;
    this.ip = limits.counter({ name: 'ip', points: s.ipRateLimit, durationSeconds: 60 });
    // Lockouts count in the store even with Redis: they hold through its outages, and guesses
    // before and during one are one budget (src/limits/limits.ts, Rule.durable).
    this.loginIp = limits.counter({ name: 'login-ip', points: s.lockoutThreshold, durationSeconds: s.lockoutSeconds, blockSeconds: s.lockoutSeconds, durable: true });
    // Its own arithmetic (the growing delay) decides; the points only bound the count.
    this.loginAccount = limits.counter({ name: 'login-account', points: Number.MAX_SAFE_INTEGER, durationSeconds: s.accountWindowSeconds, durable: true });
    // The budgets of mails to one account are the victim's too.
    this.mailIp = limits.counter({ name: 'mail-ip', points: s.resetMailsPerAccountIp, durationSeconds: HOUR, durable: true });
    this.mailFrom = limits.counter({ name: 'mail-from', points: s.resetMailsPerIp, durationSeconds: HOUR });
    this.mailAccount = limits.counter({ name: 'mail-account', points: s.resetMailsPerAccount, durationSeconds: HOUR, durable: true });
    this.codeIp = limits.counter({ name: 'code-ip', points: s.codeAttemptsPerIp, durationSeconds: s.codeWindowSeconds, durable: true });
    this.operatorToken = limits.counter({ name: 'operator-token', points: OPERATOR_TOKEN_GUESSES, durationSeconds: 15 * 60 });
  }

  /** Why the limits do not count where configured (Redis unreachable), or undefined. */
  degraded(): string | undefined {
    return this.limits.degraded();
  }

  /** Every unauthenticated request spends one of its client IP's budget; over it, 429. */
  async admit(ip: string | undefined): Promise<void> {
    const wait = await this.ip.hit(clientKey(ip));
    if (wait > 0) throw RateLimited('Too many requests; try again later.', wait);
  }

  /**
   * Before a password check, and before it waits for anything: refuses, counting nothing against
   * the account, while this IP is locked out of the account or the account's delay runs.
   */
  async mayCheckPassword(account: AccountKey, ip: string | undefined): Promise<void> {
    const ipWait = await this.loginIp.peek(`${account}|${clientKey(ip)}`);
    if (ipWait > 0) throw TooManyAttempts('Too many failed attempts; try again later.', ipWait);
    await this.refuseWhileAccountDelayed(account);
  }

  /**
   * As a password check starts: counts it as a failure in advance (cleared by `passed`), so a
   * burst of concurrent guesses cannot all get through before the first failure is recorded.
   * Called only for a check that runs: a login turned away for capacity (the costly-hash gate)
   * was never checked and counts nothing, so a storm cannot make the victim's retries lock them out.
   * The account's delay is judged again here, by the same rule as before the wait: a login that
   * waited at the gate while other guesses were counted must not run past the delay they started.
   */
  async countPasswordCheck(account: AccountKey, ip: string | undefined): Promise<void> {
    // Before the address's count: a login the account's delay refuses spends nothing of either.
    await this.refuseWhileAccountDelayed(account);
    // The peek and the count are two steps; racing requests are caught here.
    const raced = await this.loginIp.hit(`${account}|${clientKey(ip)}`);
    if (raced > 0) throw TooManyAttempts('Too many failed attempts; try again later.', raced);
    await this.loginAccount.hit(account);
  }

  /** The account-wide slowdown: refuses while the growing delay since the last failure runs. */
  private async refuseWhileAccountDelayed(account: AccountKey): Promise<void> {
    const accountWait = this.accountWait(await this.loginAccount.tally(account));
    if (accountWait > 0) throw TooManyAttempts('Too many failed attempts on this account; try again later.', accountWait);
  }

  /** A right password clears the failures counted for the account and for this IP. */
  async passed(account: AccountKey, ip: string | undefined): Promise<void> {
    await this.loginIp.reset(`${account}|${clientKey(ip)}`);
    await this.loginAccount.reset(account);
  }

  /** When the account takes another password check (epoch ms), or 0 below the threshold. */
  private accountOpensAt(tally: Tally | undefined): number {
    const over = tally ? tally.count - this.settings.accountSlowdownAfter : -1;
    if (!tally || over < 0) return 0;
    return tally.lastAt + Math.min(2 ** over * 1000, this.settings.accountMaxDelay * 1000);
  }

  private accountWait(tally: Tally | undefined): number {
    const opensAt = this.accountOpensAt(tally);
    const now = this.limits.clock();
    return opensAt > now ? secondsUntil(opensAt, now) : 0;
  }

  /**
   * Whether a reset mail may go to this account for a request from this IP. Called for unknown
   * names too, so both do the same counting; the answer to the client is 204 either way.
   */
  async mayMail(account: AccountKey, ip: string | undefined): Promise<boolean> {
    if ((await this.mailIp.hit(`${account}|${clientKey(ip)}`)) > 0) return false;
    return (await this.mailAccount.hit(account)) === 0;
  }

  /** Reset requests per IP, for any account: over it, 429 (it says nothing about an account). */
  async admitResetRequest(ip: string | undefined): Promise<void> {
    const wait = await this.mailFrom.hit(clientKey(ip));
    if (wait > 0) throw RateLimited('Too many reset requests; try again later.', wait);
  }

  /**
   * Before a reset code is compared. Over the per-(account, IP) budget the guess is refused
   * before it touches the code, so one address cannot use up the code's own attempts.
   */
  async beforeCodeCheck(account: AccountKey, ip: string | undefined): Promise<void> {
    const pair = `${account}|${clientKey(ip)}`;
    const wait = (await this.codeIp.peek(pair)) || (await this.codeIp.hit(pair));
    if (wait > 0) throw RateLimited('Attempt limit exceeded, please try after some time.', wait);
  }

  /** Seconds this client IP must wait before it may present an operator token again, or 0. */
  operatorTokenWait(ip: string | undefined): Promise<number> {
    return this.operatorToken.peek(clientKey(ip));
  }

  async operatorTokenFailed(ip: string | undefined): Promise<void> {
    await this.operatorToken.hit(clientKey(ip));
  }

  /** What an operator sees: whether the account, or any address, is locked out of it. */
  async lockState(user: Pick<User, 'id'>): Promise<LockState> {
    const account = accountOf(user, '');
    const tally = await this.loginAccount.tally(account);
    const wait = this.accountWait(tally);
    const prefix = `${account}|`;
    const ips = (await this.loginIp.list(prefix))
      .filter(({ tally: t }) => t.count >= this.settings.lockoutThreshold)
      .map(({ key, tally: t }) => ({ ip: key.slice(prefix.length), until: new Date(t.resetAt).toISOString() }));
    return {
      locked: wait > 0 || ips.length > 0,
      locked_until: wait > 0 ? new Date(this.accountOpensAt(tally)).toISOString() : null,
      failures: tally?.count ?? 0,
      locked_ips: ips,
    };
  }

  /** Lifts every lockout of the account: its own delay and every address's. */
  async unlock(user: Pick<User, 'id'>): Promise<void> {
    const account = accountOf(user, '');
    await this.loginAccount.reset(account);
    await this.loginIp.reset(`${account}|`, { prefix: true });
    await this.codeIp.reset(`${account}|`, { prefix: true });
  }
}
