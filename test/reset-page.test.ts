// The hosted reset page, driven by a real browser (Debian's chromium via playwright-core):
// from the emailed link, through the form, to a working new password.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ENGINES, needs, startServer, startMailbox, post, call, createUser, type TestServer, type Mailbox } from './helpers.ts';

// Screenshots for a person to look at: next to this file, in the git-ignored test/artifacts/,
// wherever the run was started from.
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
// CI installs chromium, so there a missing browser is a failure, not a skip.
const skip = needs(`no browser at ${CHROMIUM} (apt-get install chromium)`, haveChromium);

// The closed network refuses Chromium's background connections: keep it from trying.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

for (const engine of ENGINES) describe(`the hosted reset page in a real browser, on ${engine.name}`, { skip }, () => {
  let server: TestServer;
  let mailbox: Mailbox;
  let browser: Browser;
  let page: Page;

  before(async () => {
    mailbox = await startMailbox();
    server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url });
    await createUser(server, { username: 'rosalind', email: 'rosalind@example.com', password: 'old-password-1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ javaScriptEnabled: false });
  });
  after(async () => {
    await browser?.close();
    await server.close();
    await mailbox.close();
  });

  async function mailedLink(): Promise<string> {
    assert.equal((await post(`${server.url}/api/password/request`, { email: 'rosalind@example.com' })).status, 204);
    const mail = await mailbox.next('rosalind@example.com');
    const link = /(\S+\/reset-password\?token=[\w%-]+)/.exec(mail.text ?? '')![1];
    // The server's public URL in tests is its loopback address, so the link is followed as sent.
    assert.ok(link.startsWith(server.url), link);
    return link;
  }

  it('leads a person from the emailed link to a working new password', async () => {
    const link = await mailedLink();
    // Opening the link (as a mail scanner would) twice does not use it up.
    assert.equal((await call(link)).status, 200);
    const response = await page.goto(link);
    assert.equal(response!.status(), 200);
    assert.equal(response!.headers()['referrer-policy'], 'no-referrer');
    assert.equal(await page.title(), 'Choose a new password · Latchkey');
    assert.ok((await page.textContent('main'))!.includes('rosalind@example.com'));
    // Labelled fields, found the way a screen reader would.
    const password = page.getByLabel('New password', { exact: true });
    const confirm = page.getByLabel('Confirm new password');
    assert.equal(await password.getAttribute('type'), 'password');
    // The stylesheet applied: the card is a white box, not the browser's default.
    const background = await page.$eval('main', (el) => getComputedStyle(el).backgroundColor);
    assert.equal(background, 'rgb(255, 255, 255)');
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `reset-form-${engine.name}.png`) });

    // A mismatch is explained on the same form.
    await password.fill('rosalind-new-password');
    await confirm.fill('rosalind-other-password');
    await page.getByRole('button', { name: 'Set new password' }).click();
    assert.match((await page.getByRole('alert').textContent())!, /confirmation does not match/);

    // A password the policy refuses is explained too (the browser's own check is bypassed to reach the server's).
    await page.$eval('form', (f) => f.setAttribute('novalidate', ''));
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByLabel('Confirm new password').fill('short');
    await page.getByRole('button', { name: 'Set new password' }).click();
    assert.match((await page.getByRole('alert').textContent())!, /at least 8 characters/);

    await page.getByLabel('New password', { exact: true }).fill('rosalind-new-password');
    await page.getByLabel('Confirm new password').fill('rosalind-new-password');
    await page.getByRole('button', { name: 'Set new password' }).click();
    assert.equal(await page.title(), 'Password changed · Latchkey');
    assert.match((await page.getByRole('status').textContent())!, /has been changed/);
    await page.screenshot({ path: path.join(ARTIFACTS, `reset-done-${engine.name}.png`) });

    const login = await post(`${server.url}/api/authenticate`, { username: 'rosalind@example.com', password: 'rosalind-new-password' });
    assert.equal(login.status, 200);

    // The link is spent now.
    await page.goto(link);
    assert.match((await page.getByRole('alert').textContent())!, /already been used/);
  });

  it('says so plainly for an expired or unknown link', async () => {
    const link = await mailedLink();
    server.clock.advance(3601);
    try {
      await page.goto(link);
      assert.equal(await page.title(), 'Link not usable · Latchkey');
      assert.match((await page.getByRole('alert').textContent())!, /expired/);
    } finally {
      server.clock.advance(-3601);
    }
    await page.goto(`${server.url}/reset-password?token=made-up`);
    assert.match((await page.getByRole('alert').textContent())!, /not valid/);
  });
});
