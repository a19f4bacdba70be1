// The one identity key: how a username or email is compared everywhere (store uniqueness, login in
// every API, admin and CLI lookup, import, migration). A leaf of src/domain/, not of the core: the
// store's migration that rekeys stored names must compute it exactly as the core does, and the
// store may not run core code; both import this one definition.
import { caseFold } from 'unicode-case-folding';

/** RFC 8264 section 7: the first application and three more; a string still changing is refused. */
const MAX_ROUNDS = 4;

/**
 * NFKC, then Unicode full case folding (CaseFolding.txt, not toLowerCase: `ẞ` and `ss`, `ς` and
 * `σ` are one), then NFKC again, repeated until the string stops changing, so that the key is
 * idempotent: identityKey(identityKey(x)) === identityKey(x). One pass was not: a letter whose
 * lowercase composes with a following mark (`J̌` → `ǰ`) changed again on a second pass, so two
 * NFC-equal names were two accounts.
 */
export function identityKey(value: string): string {
  let current = value;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = caseFold(current.normalize('NFKC')).normalize('NFKC');
    if (next === current) return current;
    current = next;
  }
  return current;
}

/** Whether `value`'s key is a fixed point within the bound (every stored key is one). */
export function hasStableKey(value: string): boolean {
  const key = identityKey(value);
  return identityKey(key) === key;
}
