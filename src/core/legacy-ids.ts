// A user's id in the system they were imported from, kept when it cannot be their id here (a
// 64-bit id past 2^53 - 1, or not a number at all). Compared exactly, as written: it is printable
// ASCII only (no spaces), so no normalization, look-alike or invisible character can make two of
// them equal or one of them two. It is never a `sub`, only a way for operators to find a user.

export const MAX_LEGACY_ID_LENGTH = 64;
const LEGACY_ID = new RegExp(`^[\\x21-\\x7e]{1,${MAX_LEGACY_ID_LENGTH}}$`);

export const LEGACY_ID_RULE = `1-${MAX_LEGACY_ID_LENGTH} printable ASCII characters without spaces, not \`.\` or \`..\``;

/** The legacy id this text is, or undefined when it is not one. */
export function parseLegacyId(text: string): string | undefined {
  // `.` and `..` are path segments a URL normalizes away: /admin/legacy-ids/.. could not name one.
  return LEGACY_ID.test(text) && text !== '.' && text !== '..' ? text : undefined;
}
