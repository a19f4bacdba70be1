// Review 2 of the secret-strength rule (issue 12 item 7; INVARIANTS 11): the rule is meant to keep a
// secret from being "long enough by repetition" (src/platform/secret-strength.ts), but it counts
// 8 distinct characters anywhere, so an 8-character pattern typed four times passes: the server
// starts with LATCHKEY_KEY_SECRET, LATCHKEY_SECRET and the admin token `12345678` x 4.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, call } from './helpers.ts';

const REPEATED = '12345678'.repeat(4);

describe('review2: a secret long only by repetition', () => {
  for (const name of ['LATCHKEY_KEY_SECRET', 'LATCHKEY_SECRET', 'LATCHKEY_ADMIN_TOKEN']) {
    it(`${name}=${REPEATED} is refused at start`, async () => {
      let started: Awaited<ReturnType<typeof startServer>> | undefined;
      try {
        started = await startServer({ name: 'sqlite' }, { [name]: REPEATED });
      } catch (error) {
        assert.match(String(error), new RegExp(name));
        return;
      }
      try {
        if (name === 'LATCHKEY_ADMIN_TOKEN') {
          const reply = await call(`${started.url}/admin/users`, { headers: { authorization: `Bearer ${REPEATED}` } });
          assert.fail(`started, and the admin API answers ${reply.status} to the token ${REPEATED}`);
        }
        assert.fail(`started with ${name}=${REPEATED}`);
      } finally {
        await started.close();
      }
    });
  }
});
