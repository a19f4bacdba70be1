// Docs that paste: every shell block with a `curl` command in README.md and docs/api/*.md is
// run by `bash -e` as printed, against a started server, on each store. Only these are replaced
// in a block's text before it runs, and nothing else:
//   - the documented address (`localhost:8080` in the README, `https://example.ziik.io` in
//     docs/api/ziik.md) by the test server's address;
//   - the docs' placeholder secrets (the Ziik JWT `aaaaaaaaaa.bbbbbbbbbbb.cccccccccccc` and reset
//     token `asd234f234asd32`) by real ones the test obtained just before.
// A block runs in the repository (so `npx latchkey` is this checkout's CLI) with the server's
// store in its environment, as an operator's shell next to the server would have.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ENGINES, needs, freshStore, startServer, startMailbox, createUser, post, decodeJwt, type FreshStore, type Mailbox, type TestServer } from './helpers.ts';
import { README, withConfigTable } from '../scripts/docs-config.ts';
import { PRELOAD_SETTINGS } from '../src/platform/config.ts';

const ROOT = new URL('..', import.meta.url).pathname;

interface Block {
  file: string;
  text: string;
}

/** The fenced sh/bash/shell blocks of a markdown file that run curl. */
export function curlBlocks(file: string): Block[] {
  const markdown = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)]
    .map((match) => ({ file, text: match[1] }))
    .filter((block) => /^\s*curl /m.test(block.text));
}

const DOCS = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs/api')).filter((f) => f.endsWith('.md')).map((f) => `docs/api/${f}`)];
const BLOCKS = DOCS.flatMap(curlBlocks);

/** The path of the first URL a block's curl calls, to name the block. */
const firstPath = (block: Block) => new URL(/curl [^\n]*?"?((?:https?:\/\/)?[\w.:-]+(\/[^\s"']*))/.exec(block.text)![2], 'http://x').pathname;

function runBlock(block: Block, replacements: Record<string, string>, env: Record<string, string>) {
  let text = block.text;
  for (const [from, to] of Object.entries(replacements)) text = text.replaceAll(from, to);
  const child = spawn('bash', ['-e'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(text);
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
}

function blockAt(file: string, apiPath: string): Block {
  const found = BLOCKS.filter((b) => b.file === file && firstPath(b) === apiPath);
  assert.equal(found.length, 1, `one curl block for ${apiPath} in ${file}`);
  return found[0];
}

describe('docs: the curl blocks', () => {
  it('are all found: the README quick start and the four Ziik examples', () => {
    assert.deepEqual(
      BLOCKS.map((b) => `${b.file} ${firstPath(b)}`),
      ['README.md /v1/login', 'docs/api/ziik.md /api/authenticate', 'docs/api/ziik.md /api/renew', 'docs/api/ziik.md /api/password/request', 'docs/api/ziik.md /api/password/reset'],
    );
  });

  it('continue every line that a following option line belongs to', () => {
    // What a paste needs: `curl …` then `  -d …` without a backslash sends a request without the body.
    for (const block of BLOCKS) {
      const lines = block.text.split('\n');
      lines.forEach((line, i) => {
        if (/^\s+-/.test(line)) assert.match(lines[i - 1], /\\$/, `${block.file}: line before ${line.trim()}`);
      });
    }
  });
});

describe('docs: the configuration table', () => {
  it('in README.md is the one src/platform/config.ts generates (`npm run docs:config` writes it)', () => {
    const readme = fs.readFileSync(README, 'utf8');
    assert.equal(readme, withConfigTable(readme), "README.md's configuration table is not src/platform/config.ts's: run `npm run docs:config`");
  });

  it('lists exactly the variables bin/threadpool.cjs reads (the rows src/platform/config.ts does not parse)', () => {
    const preload = fs.readFileSync(path.join(ROOT, 'bin/threadpool.cjs'), 'utf8');
    const read = new Set([...preload.matchAll(/process\.env\.(\w+)/g)].map((match) => match[1]));
    assert.deepEqual([...read].sort(), PRELOAD_SETTINGS.map((row) => row.env).sort());
  });
});

// curl is not what the README's top asks for: without it (outside CI) these suites are skipped, and counted.
const curlSkip = needs('curl is not installed (apt-get install curl)', spawnSync('curl', ['--version']).status === 0);

for (const engine of ENGINES) {
  describe(`docs: the curl blocks run as printed on ${engine.name}`, { skip: curlSkip }, () => {
    let store: FreshStore;
    let server: TestServer;
    let mailbox: Mailbox;
    let host: string;

    before(async () => {
      store = await freshStore(engine);
      mailbox = await startMailbox();
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url }, store);
      host = new URL(server.url).host;
      // The users of the Ziik examples (the README's quick start creates its own).
      await createUser(server, { username: 'example', email: 'example@example.com', password: 'thisIsMyPassword' });
      await createUser(server, { username: 'mail', email: 'mail@example.com', password: 'oldpassword' });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
      await store.drop();
    });

    it('README: the quick start creates alice with the CLI and logs her in', async () => {
      const ran = await runBlock(blockAt('README.md', '/v1/login'), { 'localhost:8080': host }, store.env);
      assert.equal(ran.code, 0, ran.stderr);
      const [cliOutput, loginOutput] = [ran.stdout.slice(0, ran.stdout.lastIndexOf('\n')), ran.stdout.slice(ran.stdout.lastIndexOf('\n') + 1)];
      assert.equal(JSON.parse(cliOutput).username, 'alice');
      const login = JSON.parse(loginOutput);
      assert.equal(login.expires_in, 86400);
      assert.equal(decodeJwt(login.access_token).username, 'alice');
    });

    it('Ziik: authenticate answers [{jwt, expires}], and renew (a GET) renews it in the same session', async () => {
      const ziik = { 'https://example.ziik.io': server.url };
      const authenticated = await runBlock(blockAt('docs/api/ziik.md', '/api/authenticate'), ziik, {});
      assert.equal(authenticated.code, 0, authenticated.stderr);
      const [{ jwt, expires }] = JSON.parse(authenticated.stdout);
      assert.equal(decodeJwt(jwt).exp, expires);

      const renewed = await runBlock(blockAt('docs/api/ziik.md', '/api/renew'), { ...ziik, 'aaaaaaaaaa.bbbbbbbbbbb.cccccccccccc': jwt }, {});
      assert.equal(renewed.code, 0, renewed.stderr);
      const [fresh] = JSON.parse(renewed.stdout);
      assert.notEqual(fresh.jwt, jwt);
      assert.equal(decodeJwt(fresh.jwt).sid, decodeJwt(jwt).sid);
    });

    it('Ziik: password request mails a link, and reset with its token sets the password', async () => {
      const ziik = { 'https://example.ziik.io': server.url };
      const requested = await runBlock(blockAt('docs/api/ziik.md', '/api/password/request'), ziik, {});
      assert.equal(requested.code, 0, requested.stderr);
      assert.match(requested.stdout, /^HTTP\/1\.1 204 No Content\r\n/);
      const mail = await mailbox.next('mail@example.com');
      const token = decodeURIComponent(/reset-password\?token=([\w%-]+)/.exec(mail.text ?? '')![1]);

      const reset = await runBlock(blockAt('docs/api/ziik.md', '/api/password/reset'), { ...ziik, asd234f234asd32: token }, {});
      assert.equal(reset.code, 0, reset.stderr);
      assert.match(reset.stdout, /^HTTP\/1\.1 204 No Content\r\n/);
      assert.equal((await post(`${server.url}/api/authenticate`, { username: 'mail@example.com', password: 'newpassword' })).status, 200);
      assert.equal((await post(`${server.url}/api/authenticate`, { username: 'mail@example.com', password: 'oldpassword' })).status, 401);
    });
  });
}

describe('docs/architecture.md', () => {
  const page = fs.readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');

  it('names every room of src/, and no room that is gone', () => {
    const rooms = fs.readdirSync(path.join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `src/${e.name}/`);
    for (const room of rooms) assert.ok(page.includes(`\`${room}\``), `docs/architecture.md does not draw ${room}`);
    const named = [...page.matchAll(/`(src\/[a-z-]+\/)`/g)].map((m) => m[1]);
    for (const room of named) assert.ok(rooms.includes(room), `docs/architecture.md draws ${room}, which src/ no longer has`);
  });

  it('states every layering rule that .dependency-cruiser.cjs checks', async () => {
    const { default: config } = (await import(path.join(ROOT, '.dependency-cruiser.cjs'))) as { default: { forbidden: { name: string }[] } };
    for (const { name } of config.forbidden) assert.ok(page.includes(`\`${name}\``), `docs/architecture.md does not state the rule ${name}`);
  });
});
