// Password hashes made by the real tools of the systems users migrate from: Django's make_password,
// passlib and the bcrypt module (Debian's python3-django, python3-passlib, python3-bcrypt), PHP's
// password_hash (php-cli) and Apache's htpasswd -B (apache2-utils). Only the fixture maker
// (make-foreign-hash-fixtures.ts) runs them; `.ci/run` installs them. Tests read the fixtures.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { SourceUser } from '../foreign-hash-fixtures.ts';

export function run(tool: string, args: string[]): string {
  try {
    return execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`${tool} failed (is it installed? .ci/run installs it): ${(error as Error).message}`);
  }
}

/** Format name → a hash of `password` made by that format's own tool. */
export function realHashes(password: string): Record<string, string> {
  const django = JSON.parse(run('/usr/bin/python3', [path.join(import.meta.dirname, 'django-hashes.py'), password]));
  const php = JSON.parse(
    run('php', [
      '-r',
      'echo json_encode(["php_bcrypt" => password_hash($argv[1], PASSWORD_BCRYPT), "php_argon2id" => password_hash($argv[1], PASSWORD_ARGON2ID), "php_argon2i" => password_hash($argv[1], PASSWORD_ARGON2I)]);',
      password,
    ]),
  );
  const htpasswd = run('htpasswd', ['-nbB', '-C', '5', 'user', password]).trim().split(':')[1];
  return { ...django, ...php, htpasswd_bcrypt: htpasswd };
}

/** A Django auth_user table, built by Django itself, dumped to CSV by the README's query. */
export function djangoUsersCsv(outPath: string, users: SourceUser[]): void {
  run('/usr/bin/python3', [path.join(import.meta.dirname, 'django-users-csv.py'), outPath, JSON.stringify(users)]);
}

/** A PHP app's user list as JSON Lines, its hashes made by password_hash (bcrypt, `$2y$`). */
export function phpUsersJsonLines(users: SourceUser[]): string {
  return run('php', [
    '-r',
    'foreach (json_decode($argv[1], true) as $u) echo json_encode(["username" => $u["username"], "email" => $u["email"], "password_hash" => password_hash($u["password"], PASSWORD_BCRYPT, ["cost" => 6])]), "\n";',
    JSON.stringify(users),
  ]);
}
