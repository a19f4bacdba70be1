// Password hashes made by the real tools of the systems users migrate from (Django, passlib, the
// bcrypt module, PHP's password_hash, Apache's htpasswd), kept as test vectors in
// test/fixtures/foreign-hashes.json so `npm test` needs none of those tools.
// test/tools/make-foreign-hash-fixtures.ts makes the file with the tools themselves; .ci/run
// makes a fresh one and checks it with checkForeignHashes, so the vectors cannot drift from what
// the tools make today.
import fs from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import { parseHash, verifyHash } from '../src/core/hash-formats.ts';

export const FIXTURES = new URL('fixtures/foreign-hashes.json', import.meta.url).pathname;

/** One hash of `password`, made by `tool` at `version`. */
export interface ForeignHash {
  /** Which hasher of the tool made it: a key of EXPECTED_FORMATS. */
  name: string;
  tool: string;
  version: string;
  password: string;
  hash: string;
}

export interface SourceUser {
  username: string;
  email: string;
  password: string;
  /** Django only: which of its hashers made the hash (default: its default, pbkdf2_sha256). */
  hasher?: string;
  active?: boolean;
}

export interface ForeignHashes {
  /** The command that made this file. */
  made_by: string;
  hashes: ForeignHash[];
  /** A real Django auth_user table, made by Django, dumped to CSV by the README's query. */
  django_users: { tool: string; version: string; users: SourceUser[]; csv: string };
  /** A PHP app's user list as JSON Lines, its hashes made by password_hash (bcrypt, `$2y$`). */
  php_users: { tool: string; version: string; users: SourceUser[]; jsonl: string };
}

/** Hasher name → the format Latchkey must read its hashes as. */
export const EXPECTED_FORMATS: Record<string, string> = {
  pbkdf2_sha256: 'django_pbkdf2_sha256',
  pbkdf2_sha1: 'django_pbkdf2_sha1',
  argon2: 'django_argon2',
  bcrypt_sha256: 'django_bcrypt_sha256',
  bcrypt: 'django_bcrypt',
  scrypt: 'django_scrypt',
  phc_scrypt: 'scrypt',
  phc_argon2: 'argon2',
  bcrypt_2a: 'bcrypt',
  php_bcrypt: 'bcrypt',
  php_argon2id: 'argon2',
  php_argon2i: 'argon2',
  htpasswd_bcrypt: 'bcrypt',
};

export function loadForeignHashes(file = FIXTURES): ForeignHashes {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Name → hash, for the tests that walk every format. */
export function hashesByName(fixtures: ForeignHashes): Record<string, string> {
  return Object.fromEntries(fixtures.hashes.map((h) => [h.name, h.hash]));
}

/** The password hash of each row of the Django CSV, by username. */
export function djangoCsvHashes(csv: string): Map<string, string> {
  const rows: Record<string, string>[] = parseCsv(csv, { columns: true });
  return new Map(rows.map((row) => [row.username, row.password_hash]));
}

/**
 * Every way a set of vectors can be wrong: a format missing or read as another, a hash that does
 * not verify its password or verifies another. Empty when all is well.
 */
export async function checkForeignHashes(fixtures: ForeignHashes): Promise<string[]> {
  const problems: string[] = [];
  const names = fixtures.hashes.map((h) => h.name).sort();
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(EXPECTED_FORMATS).sort())) problems.push(`hashers ${names.join(', ')}; expected ${Object.keys(EXPECTED_FORMATS).sort().join(', ')}`);
  const check = async (what: string, hash: string, password: string, format?: string) => {
    const parsed = parseHash(hash)?.format;
    if (!parsed) return problems.push(`${what}: ${hash} is not a known format`);
    if (format && parsed !== format) problems.push(`${what}: read as ${parsed}, expected ${format}`);
    if (!(await verifyHash(hash, password))) problems.push(`${what}: does not verify its password`);
    if (await verifyHash(hash, password + 'x')) problems.push(`${what}: verifies another password`);
  };
  for (const h of fixtures.hashes) await check(`${h.tool} ${h.version} ${h.name}`, h.hash, h.password, EXPECTED_FORMATS[h.name]);
  const django = djangoCsvHashes(fixtures.django_users.csv);
  for (const user of fixtures.django_users.users) {
    const hash = django.get(user.username);
    if (!hash) problems.push(`django CSV: no row for ${user.username}`);
    else await check(`django CSV ${user.username}`, hash, user.password);
  }
  const php = new Map(fixtures.php_users.jsonl.trim().split('\n').map((line) => JSON.parse(line)).map((row) => [row.username, row.password_hash]));
  for (const user of fixtures.php_users.users) {
    const hash = php.get(user.username);
    if (!hash) problems.push(`PHP JSON Lines: no row for ${user.username}`);
    else await check(`PHP JSON Lines ${user.username}`, hash, user.password, 'bcrypt');
  }
  return problems;
}
