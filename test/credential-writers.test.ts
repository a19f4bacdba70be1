// One credential path (INVARIANTS.md 4): only src/store/credentials.ts writes a user's credential
// columns or creates a user, and only src/core/credentials.ts (the operation that bumps the
// security stamp and retires sessions, codes, links and challenges) may import it. Checked two
// ways: the type checker refuses every other writer (the @ts-expect-error lines below are errors
// `tsc --noEmit` must find, else it fails), and a scan of src/ refuses any other file that writes
// those columns or imports the store module.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Store } from '../src/store/store.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STORE_MODULE = 'src/store/credentials.ts';
const CORE_OPERATION = 'src/core/credentials.ts';
const COLUMNS = ['password_hash', 'status', 'email', 'security_stamp', 'managed_by'];

/** What the type checker must refuse; never run. */
export function refusedByTheTypes(store: Store) {
  // @ts-expect-error the store creates no user itself
  void store.insertUser;
  // @ts-expect-error nor many
  void store.insertUsers;
  // @ts-expect-error there is no generic update of a user
  void store.updateUser;
  // @ts-expect-error nor a credential write, a claim or a rehash of its own
  void [store.updateCredentials, store.claimPasswordHash, store.replacePasswordHash];
  // @ts-expect-error a profile update takes no credential column
  void store.updateProfile(1, { updated_at: 1, password_hash: 'x' });
  // @ts-expect-error nor a status
  void store.updateProfile(1, { updated_at: 1, status: 'active' });
  // @ts-expect-error only src/store/credentials.ts holds the key to the query builder
  void store.credentialWriter({});
  // @ts-expect-error nor to what lies beneath the store: only src/store/diagnostics.ts (bench and tests) holds that key
  void store.internals({});
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name) ? [full] : [];
  });
}

const rel = (file: string) => path.relative(root, file).split(path.sep).join('/');
const files = sourceFiles(path.join(root, 'src')).map((file) => ({ name: rel(file), text: readFileSync(file, 'utf8') }));

/** The statements of `text` that write the users table, each up to its end (`;`). */
export function usersWrites(text: string): string[] {
  const starts = /\b(?:updateTable|insertInto|replaceInto|mergeInto)\(\s*['"`]users['"`]|\b(?:update|insert\s+(?:or\s+\w+\s+)?into|replace\s+into|merge\s+into)\s+"?users"?\b/gi;
  return [...text.matchAll(starts)].map((match) => {
    const end = text.indexOf(';', match.index);
    return text.slice(match.index, end === -1 ? undefined : end);
  });
}

/** Every module specifier `text` imports or re-exports, static or dynamic. */
function importsOf(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]);
}

describe('one credential path', () => {
  it('the scan sees what it looks for', () => {
    // A scan that finds nothing proves nothing: it must see the writes the store module does make.
    const own = files.find((f) => f.name === STORE_MODULE)!;
    assert.ok(own, `${STORE_MODULE} exists`);
    assert.ok(usersWrites(own.text).some((w) => /password_hash/.test(w)), 'the scan finds the store module\'s own hash write');
    assert.ok(usersWrites(own.text).some((w) => /insertInto/.test(w)), 'and its inserts');
    assert.equal(usersWrites("db.updateTable('users').set({ email: x }).where('id', '=', 1);").length, 1);
    assert.equal(usersWrites('sql`UPDATE users SET status = 1`;').length, 1);
    assert.equal(typeof refusedByTheTypes, 'function');
  });

  it(`no file but ${STORE_MODULE} creates a user or writes a credential column`, () => {
    const offenders: string[] = [];
    for (const file of files) {
      if (file.name === STORE_MODULE) continue;
      for (const write of usersWrites(file.text)) {
        const creates = /insert|replace|merge/i.test(write.slice(0, 20));
        const column = COLUMNS.find((c) => new RegExp(`\\b${c}\\b`).test(write));
        if (creates || column) offenders.push(`${file.name}: ${creates ? 'creates users' : `writes ${column}`}`);
      }
      if (file.text.includes('credentialWriter(') && file.name !== 'src/store/store.ts') offenders.push(`${file.name}: opens the credential writer`);
    }
    assert.deepEqual(offenders, []);
  });

  it(`only ${CORE_OPERATION} imports ${STORE_MODULE}`, () => {
    const importers: string[] = [];
    for (const file of files) {
      for (const specifier of importsOf(file.text)) {
        if (!specifier.startsWith('.')) continue;
        const target = rel(path.resolve(root, path.dirname(file.name), specifier)).replace(/\.js$/, '.ts');
        if (target === STORE_MODULE || target === STORE_MODULE.replace(/\.ts$/, '')) importers.push(file.name);
      }
    }
    // store.ts names only the key's type, from a leaf module: the type opens nothing without the key's one value.
    assert.deepEqual([...new Set(importers)], [CORE_OPERATION]);
  });
});
