// The only module that writes a user's credential columns (password_hash, status, email,
// managed_by, security_stamp) or creates a user. Only src/core/credentials.ts may import it (the
// dependency rule, and test/credential-writers.test.ts), so every such write goes through the one
// core operation that bumps the security stamp and retires what the old credential vouched for.
import { sql } from 'kysely';
import type { ManagedBy, NewUser, User, UserStatus } from './schema.ts';
import { IdOutOfRange, isDeletedIdReuse, isIdOutOfRange, isUniqueViolation, UniqueViolation, type Store } from './store.ts';
import type { CredentialKey } from './credential-key.ts';
import { lookAlikeKey } from '../domain/skeleton.ts';

const KEY = Object.freeze({}) as CredentialKey;

/** A new user as created: the security stamp is the store's to start, the skeletons the store's to compute. */
export type UserToCreate = Omit<NewUser, 'security_stamp' | 'username_skeleton' | 'email_skeleton'>;

/**
 * The skeletons written with a username or email, here where the columns are written, so that no
 * path can store a name without the look-alike key that keeps it unique.
 */
function skeletonsOf(user: { username?: string; email?: string | null }) {
  return {
    ...(user.username === undefined ? {} : { username_skeleton: lookAlikeKey(user.username) }),
    ...(user.email === undefined ? {} : { email_skeleton: user.email === null ? null : lookAlikeKey(user.email) }),
  };
}

function storeError(error: unknown, taken: string): unknown {
  if (isUniqueViolation(error) || isDeletedIdReuse(error)) return new UniqueViolation(taken);
  if (isIdOutOfRange(error)) return new IdOutOfRange('no user id is left at or below 2^53 - 1');
  return error;
}

/** The key of the name migration 0007 gives an account set aside by a collision (`COLLISION-<id>`). */
const SET_ASIDE_KEY = /^collision-\d+$/;

/**
 * A key two accounts collided on (migration 0007) is held by neither until an operator settles
 * it, and by no one else meanwhile: a newcomer would hold the name both old accounts answer to.
 * Nor a look-alike of it (same UTS #39 skeleton): the set-aside accounts keep no skeleton, so the
 * store's unique skeleton cannot refuse `g1ass` while `glass` waits, and settling `glass` would
 * then be refused as looking like the newcomer. Refused as taken. (The collisions table only
 * shrinks, so checking first cannot let one through.)
 */
async function refuseCollidedKeys(store: Store, users: { username?: string | null; email?: string | null }[], exceptUserId?: number): Promise<void> {
  const usernames = users.flatMap((u) => (u.username ? [u.username] : []));
  // Nor the key of a set-aside account's name (`COLLISION-7`): looking that name up, as listings
  // show it, or checking its password by it, would find the holder of `collision-7` instead.
  if (usernames.some((name) => SET_ASIDE_KEY.test(name))) throw new UniqueViolation('username reserved for accounts set aside by a collision');
  const emails = users.flatMap((u) => (u.email ? [u.email] : []));
  if (!usernames.length && !emails.length) return;
  const collided = await store.collidedKeys(exceptUserId);
  if (!collided.length) return;
  const reserved = new Set(collided.map((c) => `${c.field}:${lookAlikeKey(c.key)}`));
  const wanted = [...usernames.map((name) => `username:${lookAlikeKey(name)}`), ...emails.map((email) => `email:${lookAlikeKey(email)}`)];
  if (wanted.some((key) => reserved.has(key))) {
    throw new UniqueViolation('username or email held by an unsettled collision, or looks like one (latchkey users collisions)');
  }
}

export async function insertUser(store: Store, user: UserToCreate): Promise<User> {
  await refuseCollidedKeys(store, [user]);
  try {
    return await store
      .credentialWriter(KEY)
      .insertInto('users')
      .values({ ...user, ...skeletonsOf(user) })
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (error) {
    throw storeError(error, 'username or email already taken, or looks like one taken');
  }
}

/** Many users in one statement per shape (rows with and without an id); all or none. */
export async function insertUsers(store: Store, users: UserToCreate[]): Promise<void> {
  await refuseCollidedKeys(store, users);
  const withId = users.filter((u) => u.id !== undefined);
  const withoutId = users.filter((u) => u.id === undefined);
  try {
    for (const group of [withId, withoutId]) {
      if (group.length) await store.credentialWriter(KEY).insertInto('users').values(group.map((u) => ({ ...u, ...skeletonsOf(u) }))).execute();
    }
  } catch (error) {
    throw storeError(error, 'username, email or id already taken, or looks like one taken');
  }
}

export interface CredentialWrite {
  /** An identity key (an operator settling a collision): what the old name vouched for ends too. */
  username?: string;
  password_hash?: string | null;
  status?: UserStatus;
  email?: string | null;
  managed_by?: ManagedBy;
  password_changed_at?: number | null;
  updated_at: number;
}

export interface WriteConditions {
  /** Only if the stamp is still this one (nothing changed the credentials since it was read). */
  expectStamp?: number;
  /** Only if the user has no password hash yet (a lazy migration's claim). */
  withoutPassword?: boolean;
  /** A disabled user stays disabled whatever `status` says (decided in the row, so a racing disable wins). */
  keepDisabled: boolean;
}

/**
 * Writes credentials and bumps the security stamp, which voids every request that read the user
 * before; undefined when no row matched the conditions.
 */
export async function writeCredentials(store: Store, id: number, change: CredentialWrite, when: WriteConditions): Promise<User | undefined> {
  if (change.username !== undefined || change.email) await refuseCollidedKeys(store, [{ username: change.username, email: change.email }], id);
  const { status, ...rest } = change;
  let query = store
    .credentialWriter(KEY)
    .updateTable('users')
    .set((eb) => ({
      ...rest,
      ...skeletonsOf(rest),
      ...(status === undefined
        ? {}
        : { status: when.keepDisabled ? sql<UserStatus>`case when status = 'disabled' then 'disabled' else ${status} end` : status }),
      security_stamp: eb('security_stamp', '+', 1),
    }))
    .where('id', '=', id);
  if (when.expectStamp !== undefined) query = query.where('security_stamp', '=', when.expectStamp);
  if (when.withoutPassword) query = query.where('password_hash', 'is', null);
  try {
    return await query.returningAll().executeTakeFirst();
  } catch (error) {
    throw storeError(error, 'username or email already taken, or looks like one taken');
  }
}

/**
 * The rehash at login (same secret, a better hash): replaces the hash only if it is still
 * `expected`, so it never overwrites a password changed while that login was being checked. Not
 * a credential change: the stamp stays.
 */
export async function replacePasswordHash(store: Store, id: number, expected: string, next: string): Promise<boolean> {
  const result = await store
    .credentialWriter(KEY)
    .updateTable('users')
    .set({ password_hash: next })
    .where('id', '=', id)
    .where('password_hash', '=', expected)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
