// User ids are JSON numbers (Roypi's `"id": 1165`, every token's `sub`), and JavaScript reads a
// number above 2^53 - 1 as a neighbour: two accounts would share one id. So an id is an integer
// from 1 to 2^53 - 1, read from text exactly (decimal digits, no sign, no leading zero, no
// exponent), and the store refuses to hand out a larger one (migration 0008).

export const MAX_USER_ID = Number.MAX_SAFE_INTEGER;
const DECIMAL = /^[1-9][0-9]{0,15}$/;

/** The id this text spells exactly, or undefined when it is not an id from 1 to 2^53 - 1. */
export function parseUserId(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const id = Number(text);
  return Number.isSafeInteger(id) && id <= MAX_USER_ID ? id : undefined;
}
