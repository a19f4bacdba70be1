// Hostile import files: one huge line (with no newline, or in many tiny chunks) is refused as soon
// as it crosses the line limit, naming its line, without the reader holding or rescanning it; the
// admin import's body is bounded (413 in the admin shape, naming where it stopped); the CLI
// reports a huge line in a JSON Lines file as a reject and stops at a huge CSV record, naming it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execFile } from 'node:child_process';
import { ENGINES, startServer, freshStore, call, ADMIN_TOKEN, type TestServer, type FreshStore } from './helpers.ts';
import { jsonLines } from '../src/transfer/records.ts';

const CLI = new URL('../bin/latchkey.js', import.meta.url).pathname;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const LIMIT = 64 * 1024;
const ndjson = { ...admin, 'content-type': 'application/x-ndjson' };

describe('the JSON Lines reader', () => {
  it('refuses a line with no newline as soon as it crosses the limit, having read little more than the limit', async () => {
    let pulled = 0;
    // 8 MiB of one line, in 4 KiB chunks, then a good row.
    async function* source() {
      for (let i = 0; i < 2048; i++) {
        pulled += 4096;
        yield Buffer.alloc(4096, 'a');
      }
      yield Buffer.from('\n{"username":"after"}\n');
    }
    const records = jsonLines(Readable.from(source()));
    const first = await records.next();
    assert.deepEqual(first.value, { line: 1, error: `line 1 is longer than ${LIMIT} bytes` });
    assert.ok(pulled < 8 * LIMIT, `read ${pulled} bytes before refusing the line`);
    const rest = [];
    for await (const record of records) rest.push(record);
    assert.deepEqual(rest, [{ line: 2, fields: { username: 'after' } }]);
  });

  it('a long line in one-byte chunks, CRLF endings, a BOM and bytes that are not UTF-8 are each read or refused by line', async () => {
    async function* source() {
      yield Buffer.from('\ufeff{"username":"first"}\r\n');
      for (let i = 0; i < LIMIT + 10; i++) yield Buffer.from('b');
      yield Buffer.from('\n{"username":"\xff"}\n', 'latin1');
      yield Buffer.from('{"username":"last"}');
    }
    const records = [];
    for await (const record of jsonLines(Readable.from(source()))) records.push(record);
    assert.deepEqual(records, [
      { line: 1, fields: { username: 'first' } },
      { line: 2, error: `line 2 is longer than ${LIMIT} bytes` },
      { line: 3, error: 'not valid UTF-8' },
      { line: 4, fields: { username: 'last' } },
    ]);
  });
});

function cli(store: FreshStore, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...store.env, LOG_LEVEL: 'silent' } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

for (const engine of ENGINES) {
  describe(`import limits on ${engine.name}`, () => {
    let store: FreshStore;
    let server: TestServer;
    let dir: string;
    before(async () => {
      store = await freshStore(engine);
      server = await startServer(engine, { LATCHKEY_IMPORT_MAX_BYTES: String(1024 * 1024) }, store);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-import-limits-'));
    });
    after(async () => {
      await server.close();
      await store.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('POST /admin/users/import rejects an over-long line by its number and imports the rest', async () => {
      const huge = JSON.stringify({ username: 'huge', password_hash: 'x'.repeat(200 * 1024) });
      const body = `${huge}\n${JSON.stringify({ username: 'after_huge', email: 'after.huge@example.com' })}\n`;
      const reply = await call(`${server.url}/admin/users/import`, { body, headers: ndjson });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.body.rejects, [{ line: 1, reason: `line 1 is longer than ${LIMIT} bytes` }]);
      assert.equal(reply.body.imported, 1);
      assert.ok(await server.core.store.userByUsername('after_huge'));
    });

    it('a body over LATCHKEY_IMPORT_MAX_BYTES is 413 in the admin shape: at once when its length is announced, else where it stops', async () => {
      const rows = Array.from({ length: 30_000 }, (_, i) => JSON.stringify({ username: `cap_${i}`, email: `cap.${i}@example.com` }) + '\n');
      const body = rows.join('');
      assert.ok(body.length > 1024 * 1024);
      const announced = await call(`${server.url}/admin/users/import`, { body, headers: ndjson });
      assert.equal(announced.status, 413, announced.text);
      assert.equal(announced.body.error, 'body_too_large');
      assert.match(announced.body.message, /LATCHKEY_IMPORT_MAX_BYTES/);
      assert.equal(await server.core.store.userByUsername('cap_0'), undefined);

      // Chunked (no content-length): read until the limit, then refused naming the line reached.
      const stream = new ReadableStream({
        start(controller) {
          for (let i = 0; i < rows.length; i += 500) controller.enqueue(new TextEncoder().encode(rows.slice(i, i + 500).join('')));
          controller.close();
        },
      });
      const response = await fetch(`${server.url}/admin/users/import`, { method: 'POST', headers: ndjson, body: stream, duplex: 'half' } as RequestInit);
      const streamed = (await response.json()) as { error: string; message: string };
      assert.equal(response.status, 413, JSON.stringify(streamed));
      assert.equal(streamed.error, 'body_too_large');
      const line = Number(/stopped in line (\d+)/.exec(streamed.message)?.[1]);
      assert.ok(line > 1 && line <= rows.length, streamed.message);
      // The rows above that line are in, the one it stopped in is not.
      assert.ok(await server.core.store.userByUsername(`cap_${line - 2}`), `row of line ${line - 1}`);
      assert.equal(await server.core.store.userByUsername(`cap_${line - 1}`), undefined);
    });

    it('latchkey users import: an over-long JSON Lines row is a reject naming its line; an over-long CSV record stops the import naming its line', async () => {
      const jsonl = path.join(dir, 'huge.jsonl');
      fs.writeFileSync(jsonl, `{"username":"cli_before"}\n${'{"username":"' + 'y'.repeat(3 * 1024 * 1024)}\n{"username":"cli_after"}\n`);
      const imported = await cli(store, ['users', 'import', jsonl]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.deepEqual([JSON.parse(imported.stdout).imported, JSON.parse(imported.stdout).rejected], [2, 1]);
      assert.deepEqual(JSON.parse(fs.readFileSync(`${jsonl}.rejects.jsonl`, 'utf8')), { line: 2, reason: `line 2 is longer than ${LIMIT} bytes` });

      const csv = path.join(dir, 'huge.csv');
      fs.writeFileSync(csv, `username,email\ncsv_before,csv.before@example.com\n${'z'.repeat(3 * 1024 * 1024)},x@example.com\ncsv_after,csv.after@example.com\n`);
      const stopped = await cli(store, ['users', 'import', csv]);
      assert.equal(stopped.code, 1, stopped.stdout);
      assert.match(stopped.stderr, /line 3: a record is longer than 65536 bytes/);
      assert.ok(await server.core.store.userByUsername('csv_before'));
      assert.equal(await server.core.store.userByUsername('csv_after'), undefined);
    });
  });
}
