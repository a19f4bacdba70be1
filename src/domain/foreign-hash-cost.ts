// The cap on the work one login may spend on a stored hash, and each client's share of the gate
// costly checks pass, apart from the hashing itself
// (src/core/passwords.ts), so the configuration can bound it without loading the hash libraries.
/** For callers without settings (tests, tools): the documented default. */
export const DEFAULT_FOREIGN_HASH_MAX_COST = 20;
/** LATCHKEY_FOREIGN_HASH_MAX_COST cannot be raised past this: about two seconds of one hashing thread. */
export const FOREIGN_HASH_MAX_COST_CEILING = 100;
/** Places (costly checks running or waiting) one client holds at the gate by default: two logins of imported users in flight at once. */
export const DEFAULT_FOREIGN_HASH_PER_CLIENT = 2;
/** Places an IPv6 /56 holds at the gate by default (a /48, or an IPv4 /24, twice that): two clients' shares. */
export const DEFAULT_FOREIGN_HASH_PER_NETWORK = 4;
