// Row types for the one schema both engines share. Times are epoch milliseconds.
import type { Generated, Insertable, Selectable } from 'kysely';

export type UserStatus = 'active' | 'force_change_password' | 'disabled';
export type ManagedBy = 'local' | 'external';
export type CodePurpose = 'reset_code' | 'reset_link' | 'challenge';

export interface UsersTable {
  id: Generated<number>;
  username: string;
  email: string | null;
  password_hash: string | null;
  status: UserStatus;
  managed_by: ManagedBy;
  created_at: number;
  updated_at: number;
  password_changed_at: number | null;
  /**
   * Bumped by every password change and by disabling. A session or one-time secret is only
   * created while the stamp is still the one its request read along with the password it checked.
   */
  security_stamp: Generated<number>;
  /**
   * The id the user had in the system they were imported from, when it cannot be theirs here (a
   * 64-bit id): an attribute for operators to find them by (unique), never a `sub`.
   */
  legacy_id: string | null;
  /**
   * UTS #39 skeletons of the username and email (src/domain/skeleton.ts), unique: no account looks
   * like another. Written by the store with the name and email alone (src/store/credentials.ts).
   * Null for an email-less user, and for the newer of two look-alikes found by migration 0011.
   */
  username_skeleton: string | null;
  email_skeleton: string | null;
}

export interface SessionsTable {
  id: string;
  user_id: number;
  /** SHA-256 of the refresh token; null for dialects that refresh with the access token. */
  refresh_token_hash: string | null;
  dialect: string;
  /** Access tokens minted by refresh in this session, for the per-refresh-token cap. */
  refresh_count: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number;
  ip: string | null;
  user_agent: string | null;
}

export interface OneTimeCodesTable {
  id: string;
  purpose: CodePurpose;
  user_id: number;
  code_hash: string;
  expires_at: number;
  attempts: number;
  used_at: number | null;
  created_at: number;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  /** PKCS#8 PEM, or `enc:v1:` + AES-256-GCM sealed PEM when LATCHKEY_KEY_SECRET is set. */
  private_key: string;
  public_jwk: string;
  created_at: number;
  retired_at: number | null;
}

export interface AuditEventsTable {
  id: Generated<number>;
  at: number;
  user_id: number | null;
  kind: string;
  ip: string | null;
  detail: string | null;
}

/** Rate-limit counts (PostgreSQL; SQLite keeps them in a file of their own). */
export interface LimitTalliesTable {
  name: string;
  count: number;
  reset_at: number;
  last_at: number;
}

export interface InstanceSettingsTable {
  name: string;
  value: string;
}

/** A user imported to be migrated from the old service at first login (LATCHKEY_MIGRATE_FROM). */
export interface UserMigrationsTable {
  user_id: number;
  state: 'awaiting' | 'migrated';
  /** The identifiers as the old service knows them (as imported); null for imports before 0006. */
  upstream_username: string | null;
  upstream_email: string | null;
}

/** Identity keys of deleted users: never created again by lazy migration. */
export interface DeletedLoginsTable {
  login_key: string;
  deleted_at: number;
}

/**
 * A user awaiting migration who was imported before the identifier as the old service knows it
 * was kept: its username and email as stored then (NFKC + toLowerCase of the import row), before
 * migration 0007 rekeyed them (`straße` became `strasse`, another name at the old service). Null
 * where that is not known. Asked about only if the old service is declared case-insensitive.
 */
export interface LegacyLoginNamesTable {
  user_id: number;
  username: string | null;
  email: string | null;
}

/** Accounts that landed on one identity key when stored names were rekeyed (migration 0007). */
export interface IdentityCollisionsTable {
  user_id: number;
  field: 'username' | 'email';
  /** The value as it was stored before. */
  original: string;
  key: string;
  found_at: number;
}

/** The newer of two existing accounts that looked alike when skeletons were added (migration 0011). */
export interface LookAlikeAccountsTable {
  user_id: number;
  field: 'username' | 'email';
  /** The older account, which kept the skeleton. */
  like_user_id: number;
  found_at: number;
}

/** Ids of deleted accounts: never another account's (a trigger refuses them, migration 0011). */
export interface DeletedUserIdsTable {
  id: number;
  deleted_at: number;
}

export interface Database {
  instance_settings: InstanceSettingsTable;
  users: UsersTable;
  sessions: SessionsTable;
  one_time_codes: OneTimeCodesTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
  limit_tallies: LimitTalliesTable;
  user_migrations: UserMigrationsTable;
  deleted_logins: DeletedLoginsTable;
  identity_collisions: IdentityCollisionsTable;
  look_alike_accounts: LookAlikeAccountsTable;
  deleted_user_ids: DeletedUserIdsTable;
  legacy_login_names: LegacyLoginNamesTable;
}

/** The tallies' table alone: all the SQL limits (src/limits/sql.ts) are given of a database. */
export interface TallyDatabase {
  limit_tallies: LimitTalliesTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type Session = Selectable<SessionsTable>;
export type OneTimeCode = Selectable<OneTimeCodesTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type UserMigration = Selectable<UserMigrationsTable>;
export type IdentityCollision = Selectable<IdentityCollisionsTable>;
export type LookAlikeAccount = Selectable<LookAlikeAccountsTable>;
export type LegacyLoginNames = Selectable<LegacyLoginNamesTable>;
