// Mail delivery against real SMTP servers that refuse: retried until one takes it, given up
// (and logged, without the secret) after the last attempt, never on the request's path.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createMailer, RETRY_DELAYS_MS } from '../src/mail/mailer.ts';
import { resetCodeMessage } from '../src/mail/messages.ts';
import { Background } from '../src/platform/background.ts';
import { ENGINES, startServer, startMailbox, freePort, post, createUser, type Mailbox, type TestServer } from './helpers.ts';

const CODE = '493817';
const message = resetCodeMessage('grace@example.com', 'grace', CODE, 60);
const refusal = (code: number) => Object.assign(new Error(code === 451 ? 'Try again later' : 'Mailbox unavailable'), { responseCode: code });

/** A mailer as the server builds one, with short waits between attempts, and its log kept. */
function mailerFor(smtpUrl: string) {
  const entries: { level: 'info' | 'error'; msg: string; obj: Record<string, unknown> }[] = [];
  const background = new Background((err) => entries.push({ level: 'error', msg: 'background failed', obj: { err } }));
  const mailer = createMailer({
    smtpUrl,
    from: 'Latchkey <latchkey@example.com>',
    outboxDir: '/nonexistent',
    background,
    retryDelaysMs: [20, 20, 20],
    log: {
      info: (obj, msg) => entries.push({ level: 'info', msg, obj: obj as Record<string, unknown> }),
      error: (obj, msg) => entries.push({ level: 'error', msg, obj: obj as Record<string, unknown> }),
    },
  });
  // The mailer's waits do not hold the process open (unref), and with no server around nothing
  // else would: keep the test's event loop alive while it drains.
  const drain = async () => {
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await background.drain();
    } finally {
      clearInterval(keepAlive);
    }
  };
  return { mailer, background: { drain }, entries, logText: () => JSON.stringify(entries) };
}

describe('mail delivery', () => {
  let mailbox: Mailbox | undefined;
  after(() => mailbox?.close());

  it('retries a refused delivery until the server takes it', async () => {
    mailbox = await startMailbox({ refuse: (attempt) => (attempt <= 2 ? refusal(451) : undefined) });
    const { mailer, background, entries, logText } = mailerFor(mailbox.url);
    mailer.enqueue(message);
    await background.drain();
    assert.equal(mailbox.attempts, 3);
    assert.equal(mailbox.messages.length, 1);
    assert.match(mailbox.messages[0].text ?? '', new RegExp(`Confirmation code: ${CODE}`));
    assert.deepEqual(
      entries.map((e) => [e.level, e.msg, e.obj.attempt, e.obj.to, e.obj.subject]),
      [
        ['error', 'mail delivery failed; will retry', 1, 'grace@example.com', 'Your password reset code'],
        ['error', 'mail delivery failed; will retry', 2, 'grace@example.com', 'Your password reset code'],
      ],
    );
    assert.match(String(entries[0].obj.err), /451/);
    assert.ok(!logText().includes(CODE), 'the code is not logged');
    await mailbox.close();
    mailbox = undefined;
  });

  it('gives up after the last attempt and logs it, when the server keeps refusing', async () => {
    mailbox = await startMailbox({ refuse: () => refusal(550) });
    const { mailer, background, entries, logText } = mailerFor(mailbox.url);
    mailer.enqueue(message);
    await background.drain();
    assert.equal(mailbox.attempts, RETRY_DELAYS_MS.length + 1);
    assert.equal(mailbox.messages.length, 0);
    assert.deepEqual(
      entries.map((e) => [e.msg, e.obj.attempt]),
      [
        ['mail delivery failed; will retry', 1],
        ['mail delivery failed; will retry', 2],
        ['mail delivery failed; will retry', 3],
        ['mail could not be delivered; giving up', 4],
      ],
    );
    assert.match(String(entries[3].obj.err), /550/);
    assert.ok(!logText().includes(CODE), 'the code is not logged');
    await mailbox.close();
    mailbox = undefined;
  });

  it('gives up the same way when nothing listens at the SMTP address', async () => {
    const { mailer, background, entries } = mailerFor(`smtp://127.0.0.1:${await freePort()}`);
    mailer.enqueue(message);
    await background.drain();
    assert.deepEqual(
      entries.map((e) => e.msg),
      [...RETRY_DELAYS_MS.map(() => 'mail delivery failed; will retry'), 'mail could not be delivered; giving up'],
    );
    assert.match(String(entries[3].obj.err), /ECONNREFUSED/);
  });
});

for (const engine of ENGINES) {
  describe(`a reset mail through a mail server that refuses once, on ${engine.name}`, () => {
    let mailbox: Mailbox;
    let server: TestServer;
    before(async () => {
      mailbox = await startMailbox({ refuse: (attempt) => (attempt === 1 ? refusal(451) : undefined) });
      server = await startServer(engine, { LATCHKEY_SMTP_URL: mailbox.url });
      await createUser(server, { username: 'grace', email: 'grace@example.com', password: 'grace-password' });
    });
    after(async () => {
      await server.close();
      await mailbox.close();
    });

    it('arrives on the retry, and its code works', async () => {
      assert.equal((await post(`${server.url}/v1/forgot-password`, { username: 'grace' })).status, 204);
      const mail = await mailbox.next('grace@example.com', 5 * RETRY_DELAYS_MS[0] + 5000);
      assert.equal(mailbox.attempts, 2);
      const code = /Confirmation code: (\d{6})/.exec(mail.text ?? '')![1];
      const confirmed = await post(`${server.url}/v1/forgot-password-confirm`, { username: 'grace', password: 'grace-new-password', confirmation_code: code });
      assert.equal(confirmed.status, 204);
      assert.equal((await post(`${server.url}/v1/login`, { username: 'grace', password: 'grace-new-password' })).status, 200);
    });
  });
}
