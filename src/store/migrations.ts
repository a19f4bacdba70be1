// One migration set for both engines. Only the auto-increment id differs between them.
import { sql, type Kysely, type Migration, type MigrationProvider, type CreateTableBuilder } from 'kysely';
// The key itself is pure (no SQL, no I/O): the one definition, used here to rekey stored rows.
import { identityKey } from '../domain/identity-key.ts';
import { lookAlikeKey } from '../domain/skeleton.ts';

export type Engine = 'sqlite' | 'postgres';

function withSerialId<T extends string>(engine: Engine, table: CreateTableBuilder<T, never>) {
  return engine === 'postgres'
    ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
}

/** The migration that creates the schema: applying it means this start found an empty store. */
export const FIRST_MIGRATION = '0001_initial';

function migrations(engine: Engine): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<any>) {
        await withSerialId(engine, db.schema.createTable('users'))
          .addColumn('username', 'text', (c) => c.notNull().unique())
          .addColumn('email', 'text', (c) => c.unique())
          .addColumn('password_hash', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('managed_by', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('password_changed_at', 'bigint')
          .execute();

        await db.schema
          .createTable('sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('refresh_token_hash', 'text', (c) => c.unique())
          .addColumn('dialect', 'text', (c) => c.notNull())
          .addColumn('refresh_count', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .addColumn('last_used_at', 'bigint', (c) => c.notNull())
          .addColumn('ip', 'text')
          .addColumn('user_agent', 'text')
          .execute();
        await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute();

        await db.schema
          .createTable('one_time_codes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('purpose', 'text', (c) => c.notNull())
          .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('code_hash', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('used_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('one_time_codes_user_purpose').on('one_time_codes').columns(['user_id', 'purpose']).execute();
        await db.schema.createIndex('one_time_codes_hash').on('one_time_codes').column('code_hash').execute();

        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('alg', 'text', (c) => c.notNull())
          .addColumn('private_key', 'text', (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('retired_at', 'bigint')
          .execute();

        await withSerialId(engine, db.schema.createTable('audit_events'))
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('user_id', 'bigint')
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('ip', 'text')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_events_user_at').on('audit_events').columns(['user_id', 'at']).execute();
      },
    },
    // Bumped by every password change and by disabling: a login, challenge or reset request that
    // read the user before such a change may not open a session or issue a secret after it.
    '0002_security_stamp': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('users').addColumn('security_stamp', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      },
    },
    '0003_limit_tallies': {
      // Rate-limit counts when there is no Redis. Unlogged: a crash may forget a few counts, and
      // no login should wait on a WAL flush for them. SQLite keeps them in limits.sqlite instead.
      async up(db: Kysely<any>) {
        if (engine !== 'postgres') return;
        await db.schema
          .createTable('limit_tallies')
          .modifyFront(sql`unlogged`)
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('reset_at', 'bigint', (c) => c.notNull())
          .addColumn('last_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('limit_tallies_reset_at').on('limit_tallies').column('reset_at').execute();
      },
    },
    // Facts about the deployment itself, such as a check of the instance secret.
    '0004_instance_settings': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('instance_settings')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        // Codes issued before were unkeyed hashes (a 6-digit one reversed from its row in a
        // second) and no longer match: they die now; each lived an hour at most, users ask again.
        await db.deleteFrom('one_time_codes').execute();
      },
    },
    // The hourly sweep deletes sessions past their end and audit events past their retention;
    // without these it read every row of both tables each time (2M sessions at a million users),
    // and on SQLite holding the write lock, and the event loop, meanwhile. Each costs one index
    // entry per login (a session and its audit event); nothing updates either column.
    '0005_sweep_indexes': {
      async up(db: Kysely<any>) {
        await db.schema.createIndex('sessions_expires_at').on('sessions').column('expires_at').execute();
        await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
      },
    },
    // Lazy migration (LATCHKEY_MIGRATE_FROM) only for users imported as awaiting it, asked about by
    // the identifier the old service knows (case and form as imported); names of deleted users,
    // so a deleted user is not created again at their next login. Kept apart from the users table.
    '0006_lazy_migration_state': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('user_migrations')
          .addColumn('user_id', 'bigint', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('upstream_username', 'text')
          .addColumn('upstream_email', 'text')
          .execute();
        await db.schema
          .createTable('deleted_logins')
          .addColumn('login_key', 'text', (c) => c.primaryKey())
          .addColumn('deleted_at', 'bigint', (c) => c.notNull())
          .execute();
        // Users imported without a password before this: awaiting, but with only their stored
        // (lowercased) name, so they migrate only where the old service is declared
        // case-insensitive (LATCHKEY_MIGRATE_CASE_INSENSITIVE) or once re-imported. Users an
        // operator created as external (SSO, audited as user_created) are never migrated.
        await sql`
          insert into user_migrations (user_id, state)
          select u.id, 'awaiting' from users u
          where u.password_hash is null and u.managed_by = 'external'
            and not exists (select 1 from audit_events a where a.user_id = u.id and a.kind = 'user_created')`.execute(db);
      },
    },
    // Usernames and emails are stored as the idempotent identity key (src/domain/identity-key.ts), no
    // longer one pass of NFKC + toLowerCase, which two NFC-equal names could pass as two keys.
    '0007_identity_key': {
      async up(db: Kysely<any>) {
        await keepLegacyLoginNames(db);
        await rekeyIdentities(db);
      },
    },
    // Ids are JSON numbers, exact only up to 2^53 - 1 (src/core/ids.ts): the store refuses a larger
    // one, imported or handed out after an imported one, rather than let two accounts share a
    // `sub`.
    '0008_user_id_bounds': {
      async up(db: Kysely<any>) {
        const max = Number.MAX_SAFE_INTEGER;
        if (engine === 'postgres') {
          await sql`alter table users add constraint users_id_exact check (id between 1 and ${sql.lit(max)})`.execute(db);
          await sql`alter table users alter column id set maxvalue ${sql.lit(max)}`.execute(db);
        } else {
          for (const event of ['insert', 'update of id']) {
            await sql`create trigger ${sql.raw(`users_id_exact_${event.split(' ')[0]}`)} after ${sql.raw(event)} on users
              when new.id < 1 or new.id > ${sql.lit(max)}
              begin select raise(abort, 'user id out of range'); end`.execute(db);
          }
        }
      },
    },
    // The old system's id, kept when it cannot be the id here (src/core/legacy-ids.ts).
    '0009_legacy_ids': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('users').addColumn('legacy_id', 'text').execute();
        await db.schema.createIndex('users_legacy_id').on('users').column('legacy_id').unique().where(sql.ref('legacy_id'), 'is not', null).execute();
      },
    },
    // Stores rekeyed by 0007 before it kept the names of legacy waiting users (see
    // keepLegacyLoginNames): those names are lost, so a name is taken as it is now only where
    // the rekey cannot have changed it; the others wait for a re-import.
    '0010_legacy_login_names': {
      async up(db: Kysely<any>) {
        await legacyLoginNamesTable(db).ifNotExists().execute();
        for (let afterId = 0; ; ) {
          const page: { id: number | string; username: string; email: string | null }[] = await db
            .selectFrom('users as u')
            .innerJoin('user_migrations as m', 'm.user_id', 'u.id')
            .select(['u.id', 'u.username', 'u.email'])
            .where('m.state', '=', 'awaiting')
            .where('m.upstream_username', 'is', null)
            .where('u.id', '>', afterId)
            .where((eb) => eb.not(eb.exists(eb.selectFrom('legacy_login_names as l').select('l.user_id').whereRef('l.user_id', '=', 'u.id'))))
            .orderBy('u.id')
            .limit(1000)
            .execute();
          if (!page.length) break;
          afterId = Number(page[page.length - 1].id);
          await db
            .insertInto('legacy_login_names')
            .values(page.map((u) => ({ user_id: u.id, username: unchangedByRekey(u.username), email: u.email === null ? null : unchangedByRekey(u.email) })))
            .execute();
        }
      },
    },
    // An account may not look like another (UTS #39 skeleton, src/domain/skeleton.ts): each name's
    // and email's skeleton is unique. And an id, once an account's, is never another's: a deleted
    // account's `sub` may still be on file at a relying party.
    '0011_look_alikes_and_retired_ids': {
      async up(db: Kysely<any>) {
        await addLookAlikeKeys(db);
        await retireDeletedIds(db, engine);
      },
    },
  };
}

function legacyLoginNamesTable(db: Kysely<any>) {
  return db.schema
    .createTable('legacy_login_names')
    .addColumn('user_id', 'bigint', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('username', 'text')
    .addColumn('email', 'text');
}

/**
 * Before the rekey: the names of users awaiting migration who were imported before the
 * identifier as the old service knows it was kept, as stored then (NFKC + toLowerCase). The rekey
 * may change them (`straße` becomes `strasse`, another name even at a case-insensitive old
 * service), so the name it leaves is not the one to ask the old service about.
 */
async function keepLegacyLoginNames(db: Kysely<any>): Promise<void> {
  await legacyLoginNamesTable(db).execute();
  await sql`
    insert into legacy_login_names (user_id, username, email)
    select u.id, u.username, u.email from users u join user_migrations m on m.user_id = u.id
    where m.state = 'awaiting' and m.upstream_username is null`.execute(db);
}

/**
 * A name as the rekey left it, when no other name stored before could have become it; else null.
 * Conservative: ASCII without `ss`. (Of every character a name stored before could hold, only `ß`
 * rekeys to ASCII, as `ss`; test/legacy-login-names.test.ts checks it over all of Unicode.)
 */
export function unchangedByRekey(value: string): string | null {
  return /^[\x20-\x7e]*$/.test(value) && !value.includes('ss') ? value : null;
}

/**
 * Adds and fills the skeleton columns. Existing accounts that look alike are not failed on: the
 * older (lower id) keeps the skeleton, the newer gets none and is listed in look_alike_accounts
 * (`latchkey users collisions`) for an operator to decide; both stay as they are meanwhile.
 */
async function addLookAlikeKeys(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('username_skeleton', 'text').execute();
  await db.schema.alterTable('users').addColumn('email_skeleton', 'text').execute();
  await db.schema
    .createTable('look_alike_accounts')
    .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('like_user_id', 'bigint', (c) => c.notNull())
    .addColumn('found_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('look_alike_accounts_pk', ['user_id', 'field'])
    .execute();
  for (let afterId = 0; ; ) {
    const page: { id: number | string; username: string; email: string | null }[] = await db
      .selectFrom('users')
      .select(['id', 'username', 'email'])
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(500)
      .execute();
    if (!page.length) break;
    afterId = Number(page[page.length - 1].id);
    // One statement per page; names set aside by 0007 (`COLLISION-<id>`) are no name and get none.
    const skeletonOf = (value: string | null) => (value === null || /^(COLLISION|REKEY)-\d+$/.test(value) ? null : lookAlikeKey(value));
    const cases = (column: 'username' | 'email') =>
      sql`case ${sql.join(page.map((u) => sql`when id = ${Number(u.id)} then ${skeletonOf(u[column])}`), sql` `)} end`;
    const [usernameCases, emailCases] = [cases('username'), cases('email')];
    await sql`update users set username_skeleton = ${usernameCases}, email_skeleton = ${emailCases}
      where id in (${sql.join(page.map((u) => Number(u.id)))})`.execute(db);
  }
  const now = Date.now();
  for (const field of ['username', 'email'] as const) {
    const column = sql.ref(`${field}_skeleton`);
    const shared: { skeleton: string; first: number | string }[] = (
      await sql<{ skeleton: string; first: number | string }>`select ${column} as skeleton, min(id) as first from users
        where ${column} is not null group by ${column} having count(*) > 1`.execute(db)
    ).rows;
    for (const { skeleton, first } of shared) {
      const newer: { id: number | string }[] = (
        await sql<{ id: number | string }>`select id from users where ${column} = ${skeleton} and id > ${Number(first)}`.execute(db)
      ).rows;
      for (const { id } of newer) {
        await db.insertInto('look_alike_accounts').values({ user_id: Number(id), field, like_user_id: Number(first), found_at: now }).execute();
        await sql`update users set ${column} = null where id = ${Number(id)}`.execute(db);
      }
    }
  }
  await db.schema.createIndex('users_username_skeleton').unique().on('users').column('username_skeleton').execute();
  await db.schema.createIndex('users_email_skeleton').unique().on('users').column('email_skeleton').execute();
}

/**
 * Ids of deleted accounts, refused by the store itself (a trigger) for any new account: an import
 * row naming one, or a PostgreSQL sequence set back. Filled with the ids the audit trail still
 * names that no account holds (deletions before this; events past retention are forgotten).
 */
async function retireDeletedIds(db: Kysely<any>, engine: Engine): Promise<void> {
  await db.schema
    .createTable('deleted_user_ids')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('deleted_at', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into deleted_user_ids (id, deleted_at)
    select distinct a.user_id, ${sql.lit(Date.now())} from audit_events a
    where a.user_id is not null and not exists (select 1 from users u where u.id = a.user_id)`.execute(db);
  if (engine === 'postgres') {
    await sql`create function users_id_never_reused() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from deleted_user_ids d where d.id = new.id) then
          raise exception 'user id was deleted and is never given again' using errcode = 'P0001';
        end if;
        return new;
      end $$`.execute(db);
    await sql`create trigger users_id_never_reused before insert or update of id on users
      for each row execute function users_id_never_reused()`.execute(db);
  } else {
    // After the insert: only then does SQLite's new.id hold an id it chose itself.
    for (const event of ['insert', 'update of id']) {
      await sql`create trigger ${sql.raw(`users_id_never_reused_${event.split(' ')[0]}`)} after ${sql.raw(event)} on users
        when exists (select 1 from deleted_user_ids d where d.id = new.id)
        begin select raise(abort, 'user id was deleted and is never given again'); end`.execute(db);
    }
  }
}

/**
 * Stores every username and email as its identity key. Two accounts that land on one key are a
 * collision: reported in identity_collisions, never merged. Both are kept, reachable by id, and
 * neither by that name (the name is set aside as `COLLISION-<id>`, which no key can equal, for it
 * has capitals; an email is set to null) until an operator settles it (`latchkey users
 * collisions`, `latchkey users settle --id N`, or deletes one of them by id).
 */
async function rekeyIdentities(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('identity_collisions')
    .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('original', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('found_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('identity_collisions_pk', ['user_id', 'field'])
    .execute();
  for (const field of ['username', 'email'] as const) {
    // Only a value whose key differs can collide: the others were unique already.
    const changed: { id: number; original: string; key: string }[] = [];
    for (let afterId = 0; ; ) {
      const page: { id: number | string; value: string | null }[] = await db
        .selectFrom('users')
        .select(['id', `${field} as value`])
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(1000)
        .execute();
      if (!page.length) break;
      afterId = Number(page[page.length - 1].id);
      for (const { id, value } of page) {
        if (value !== null && identityKey(value) !== value) changed.push({ id: Number(id), original: value, key: identityKey(value) });
      }
    }
    if (!changed.length) continue;
    const holders = new Map<string, { id: number; original: string }[]>();
    for (let i = 0; i < changed.length; i += 500) {
      const keys = changed.slice(i, i + 500).map((c) => c.key);
      const rows: { id: number | string; value: string }[] = await db.selectFrom('users').select(['id', `${field} as value`]).where(field, 'in', keys).execute();
      for (const row of rows) holders.set(row.value, [{ id: Number(row.id), original: row.value }]);
    }
    for (const c of changed) holders.set(c.key, [...(holders.get(c.key) ?? []), { id: c.id, original: c.original }]);
    const now = Date.now();
    // Out of the way first, so no rename meets a value another is about to leave.
    for (const c of changed) await db.updateTable('users').set({ [field]: field === 'username' ? `REKEY-${c.id}` : null }).where('id', '=', c.id).execute();
    for (const [key, accounts] of holders) {
      if (accounts.length === 1) {
        await db.updateTable('users').set({ [field]: key }).where('id', '=', accounts[0].id).execute();
        continue;
      }
      for (const account of accounts) {
        await db.insertInto('identity_collisions').values({ user_id: account.id, field, original: account.original, key, found_at: now }).execute();
        await db.updateTable('users').set({ [field]: field === 'username' ? `COLLISION-${account.id}` : null }).where('id', '=', account.id).execute();
      }
    }
  }
}

export function migrationProvider(engine: Engine): MigrationProvider {
  return { getMigrations: async () => migrations(engine) };
}
