// A user is addressed explicitly (invariant 3): the caller says whether it names a username or a
// numeric id (or the id it had in the system it was imported from), and a username that is all
// digits is still a username. The admin API (/admin/users/<username>, /admin/user-ids/<id>,
// /admin/legacy-ids/<legacy id>) and the CLI (`users get <username>`, `--id <id>`,
// `--legacy-id <legacy id>`) both turn what they were given into a UserRef through this one table.
import { Validation } from './errors.ts';
import { parseUserId } from './ids.ts';
import { LEGACY_ID_RULE, MAX_LEGACY_ID_LENGTH, parseLegacyId } from './legacy-ids.ts';

/** How an operator names a user: by username, by numeric id, or by legacy id, never guessed from the text. */
export type UserRef = { username: string } | { id: number } | { legacyId: string };

export type AddressedBy = 'username' | 'id' | 'legacyId';

export interface Addressing {
  /** JSON schema of the text that names the user (a path parameter, a flag's value). */
  schema: { type: 'string'; minLength?: number; maxLength?: number; pattern?: string };
  /** The user the text names; a 400 naming `field` when it names none. */
  ref(text: string, field: string): UserRef;
}

export const USER_ADDRESSINGS: Readonly<Record<AddressedBy, Addressing>> = {
  username: {
    schema: { type: 'string', minLength: 1, maxLength: 256 },
    ref: (text) => ({ username: text }),
  },
  id: {
    schema: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
    ref: (text, field) => ({ id: userIdOf(text, field) }),
  },
  legacyId: {
    schema: { type: 'string', pattern: `^[\\x21-\\x7e]{1,${MAX_LEGACY_ID_LENGTH}}$` },
    ref(text, field) {
      const legacyId = parseLegacyId(text);
      if (legacyId === undefined) throw Validation(`${field} must be ${LEGACY_ID_RULE}`, field);
      return { legacyId };
    },
  },
};

/** An id from text, exactly, from 1 to 2^53 - 1; else a 400 naming the field. */
export function userIdOf(text: string, field: string): number {
  const id = parseUserId(text);
  if (id === undefined) throw Validation(`${field} must be a user id from 1 to ${Number.MAX_SAFE_INTEGER}`, field);
  return id;
}

/** What a reference names, as an answer repeats it: the id, the legacy id, or the username. */
export function addressOf(ref: UserRef): string | number {
  return 'id' in ref ? ref.id : 'legacyId' in ref ? ref.legacyId : ref.username;
}

/** The largest page of users one call lists: the admin API's `?limit` and `users list --limit` alike. */
export const MAX_USERS_PAGE = 1000;
