// Makes test/fixtures/foreign-hashes.json (or the file named by the first argument) with the real
// tools: Django, passlib and bcrypt on Debian's /usr/bin/python3, PHP's password_hash, Apache's
// htpasswd. `.ci/run` installs them, makes a fresh file, and checks it with
// check-foreign-hash-fixtures.ts; commit a fresh file when a tool's new version changes its output.
//   node --import tsx test/tools/make-foreign-hash-fixtures.ts [OUT.json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, type ForeignHash, type ForeignHashes, type SourceUser } from '../foreign-hash-fixtures.ts';
import { djangoUsersCsv, phpUsersJsonLines, realHashes, run } from './real-hashes.ts';

// Non-ASCII, and with a ligature NFKC rewrites: the old systems hashed it as typed.
const PASSWORD = 'Grüße ﬁx 42';

const DJANGO_USERS: SourceUser[] = [
  { username: 'Dj_Alice', email: 'dj.alice@example.com', password: 'Grüße ﬁx 42' },
  { username: 'dj_bob', email: 'dj.bob@example.com', password: 'bob-password-1', hasher: 'bcrypt_sha256' },
  { username: 'dj_carol', email: 'dj.carol@example.com', password: 'carol-password-1', hasher: 'argon2' },
  { username: 'dj_dave', email: 'dj.dave@example.com', password: 'dave-password-1', hasher: 'pbkdf2_sha1' },
  { username: 'dj_erin', email: 'dj.erin@example.com', password: 'erin-password-1', hasher: 'bcrypt' },
  { username: 'dj_frank', email: 'dj.frank@example.com', password: 'frank-password-1', active: false },
];

const PHP_USERS: SourceUser[] = Array.from({ length: 5 }, (_, i) => ({
  username: `php_user_${i}`,
  email: `php.user.${i}@example.com`,
  password: `php-secret-${i}-ü`,
}));

const python = (code: string) => run('/usr/bin/python3', ['-c', code]).trim();
const versions = {
  django: python('import django; print(django.get_version())'),
  passlib: python('import passlib; print(passlib.__version__)'),
  bcrypt: python('import bcrypt; print(bcrypt.__version__)'),
  php: run('php', ['-r', 'echo PHP_VERSION;']).trim(),
  // htpasswd has no version flag; its package has.
  htpasswd: run('dpkg-query', ['-W', '-f', '${Version}', 'apache2-utils']).trim(),
};

/** Which tool made each hasher's hash (see real-hashes.ts and django-hashes.py). */
const TOOLS: Record<string, [tool: string, version: string]> = {
  pbkdf2_sha256: ['django make_password', versions.django],
  pbkdf2_sha1: ['django make_password', versions.django],
  argon2: ['django make_password', versions.django],
  bcrypt_sha256: ['django make_password', versions.django],
  bcrypt: ['django make_password', versions.django],
  // Django 3.2 lacks ScryptPasswordHasher: Django 4's encoding, written by django-hashes.py with hashlib.
  scrypt: ['django 4 ScryptPasswordHasher encoding (hashlib.scrypt)', `python ${python('import platform; print(platform.python_version())')}`],
  phc_scrypt: ['passlib.hash.scrypt', versions.passlib],
  phc_argon2: ['passlib.hash.argon2', versions.passlib],
  bcrypt_2a: ['python bcrypt.hashpw', versions.bcrypt],
  php_bcrypt: ['php password_hash PASSWORD_BCRYPT', versions.php],
  php_argon2id: ['php password_hash PASSWORD_ARGON2ID', versions.php],
  php_argon2i: ['php password_hash PASSWORD_ARGON2I', versions.php],
  htpasswd_bcrypt: ['htpasswd -nbB -C 5 (apache2-utils)', versions.htpasswd],
};

const out = path.resolve(process.argv[2] ?? FIXTURES);
const hashes: ForeignHash[] = Object.entries(realHashes(PASSWORD)).map(([name, hash]) => {
  const [tool, version] = TOOLS[name] ?? [name, 'unknown'];
  return { name, tool, version, password: PASSWORD, hash };
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-fixtures-'));
try {
  const csv = path.join(dir, 'django-users.csv');
  djangoUsersCsv(csv, DJANGO_USERS);
  const fixtures: ForeignHashes = {
    made_by: 'node --import tsx test/tools/make-foreign-hash-fixtures.ts',
    hashes,
    django_users: { tool: 'django auth_user (SQLite), the README dump query', version: versions.django, users: DJANGO_USERS, csv: fs.readFileSync(csv, 'utf8') },
    php_users: { tool: 'php password_hash PASSWORD_BCRYPT cost 6', version: versions.php, users: PHP_USERS, jsonl: phpUsersJsonLines(PHP_USERS) },
  };
  fs.writeFileSync(out, JSON.stringify(fixtures, null, 2) + '\n');
  console.log(`wrote ${hashes.length} hashes, ${DJANGO_USERS.length} Django and ${PHP_USERS.length} PHP users to ${out}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
