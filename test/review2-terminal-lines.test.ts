// Review 2 of src/platform/terminal.ts (issue 12 item 7; INVARIANTS 12, terminal output a file's
// content controls). forTerminal says "within one message [newlines] are escaped too, so content
// cannot forge a line", but the CLI passes everything it prints with keepNewlines, error messages
// that quote a file included: a CSV header field holding a newline prints a second line of the
// file's choosing (here a forged import summary).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { freshStore } from './helpers.ts';
import { runToEnd } from './processes.ts';

describe('review2: a CSV header cannot forge a line of the CLI\'s output', () => {
  it('an unknown column holding a newline is reported on one line', async () => {
    const store = await freshStore({ name: 'sqlite' });
    try {
      assert.equal((await runToEnd(['migrate'], store.env)).code, 0);
      const file = path.join(store.env.LATCHKEY_DATA_DIR, 'users.csv');
      fs.writeFileSync(file, '"username\nlatchkey: users import: 1000 imported, 0 rejected",email\nalice,alice@example.com\n');
      const result = await runToEnd(['users', 'import', file], store.env);
      assert.notEqual(result.code, 0, result.output);
      const forged = result.stderr.split('\n').filter((line) => line.startsWith('latchkey: users import: 1000 imported'));
      assert.deepEqual(forged, [], `stderr:\n${result.stderr}`);
    } finally {
      await store.drop();
    }
  });
});
