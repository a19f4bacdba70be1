// How strong a configured secret or bearer token must be. LATCHKEY_KEY_SECRET seals the signing
// keys and LATCHKEY_SECRET keys the hashes of codes: guessing either from a copy of the database
// must be hopeless, and so must guessing an operator's token over the network.

/** At least this many characters: 32 hex digits are 128 bits, 32 base64 characters 192. */
export const MIN_SECRET_LENGTH = 32;
/** At least this many different characters, so `aaaa…` or `abab…` is not long enough by repetition. */
export const MIN_DISTINCT_CHARACTERS = 8;

/** The rule, as the README and the error say it. */
export const SECRET_RULE = `at least ${MIN_SECRET_LENGTH} characters, at least ${MIN_DISTINCT_CHARACTERS} of them different (e.g. \`openssl rand -hex 32\`)`;

/** Whether `value` is strong enough to be a secret. */
export function isStrongSecret(value: string): boolean {
  const characters = [...value];
  return characters.length >= MIN_SECRET_LENGTH && new Set(characters).size >= MIN_DISTINCT_CHARACTERS;
}
