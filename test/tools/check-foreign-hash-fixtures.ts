// Checks a file of foreign-hash test vectors (by default the committed one): every hash is read
// as its format and verifies its password and no other. `.ci/run` runs it on vectors freshly made
// by the real tools, so Latchkey keeps reading what those tools make today.
//   node --import tsx test/tools/check-foreign-hash-fixtures.ts [FILE.json]
import { FIXTURES, checkForeignHashes, loadForeignHashes } from '../foreign-hash-fixtures.ts';

const file = process.argv[2] ?? FIXTURES;
const fixtures = loadForeignHashes(file);
const problems = await checkForeignHashes(fixtures);
for (const problem of problems) console.error(`${file}: ${problem}`);
if (problems.length) process.exit(1);
console.log(`${file}: ${fixtures.hashes.length} hashes and ${fixtures.django_users.users.length + fixtures.php_users.users.length} users verify`);
for (const tool of new Set(fixtures.hashes.map((h) => `${h.tool} ${h.version}`))) console.log(`  ${tool}`);
