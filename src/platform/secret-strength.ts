// How strong a configured secret or bearer token must be. LATCHKEY_KEY_SECRET seals the signing
// keys and LATCHKEY_SECRET keys the hashes of codes: guessing either from a copy of the database
// must be hopeless, and so must guessing an operator's token over the network.

/** At least this many characters: 32 hex digits are 128 bits, 32 base64 characters 192. */
export const MIN_SECRET_LENGTH = 32;
/** At least this many different characters, so `aaaa…` is not long enough by repetition. */
export const MIN_DISTINCT_CHARACTERS = 8;

/** The rule, as the README and the error say it. */
export const SECRET_RULE = `at least ${MIN_SECRET_LENGTH} characters, at least ${MIN_DISTINCT_CHARACTERS} of them different, and not a shorter piece repeated (e.g. \`openssl rand -hex 32\`)`;

/** Whether `value` is strong enough to be a secret. */
export function isStrongSecret(value: string): boolean {
  const characters = [...value];
  return characters.length >= MIN_SECRET_LENGTH && new Set(characters).size >= MIN_DISTINCT_CHARACTERS && !isRepetition(characters);
}

/**
 * Whether the text is a shorter piece written over and over (`12345678` four times, and a part of
 * it): its shortest period, from the KMP failure function, is at most half its length.
 */
function isRepetition(characters: string[]): boolean {
  const border = new Array<number>(characters.length).fill(0);
  for (let i = 1, k = 0; i < characters.length; i++) {
    while (k > 0 && characters[i] !== characters[k]) k = border[k - 1];
    if (characters[i] === characters[k]) k++;
    border[i] = k;
  }
  const period = characters.length - (border.at(-1) ?? 0);
  return period * 2 <= characters.length;
}
