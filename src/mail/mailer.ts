// Mail goes out by SMTP when LATCHKEY_SMTP_URL is set, else into an outbox folder as .eml
// files (for development). Sending happens off the request path, with retries, so a
// slow or down SMTP server neither delays an answer nor reveals whether an account exists.
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Background } from '../platform/background.ts';
import { redactUrl } from '../platform/redact.ts';

export interface Message {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** Queues a message and returns at once; Background.drain() waits for it. */
  enqueue(message: Message): void;
  readonly describe: string;
}

interface Log {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Waits before the 2nd, 3rd and 4th delivery attempts; after the 4th fails the mail is given up. */
export const RETRY_DELAYS_MS = [1_000, 5_000, 30_000];

export function createMailer(options: {
  smtpUrl?: string;
  from: string;
  outboxDir: string;
  log: Log;
  background: Background;
  /** Tests shorten the waits; the number of attempts stays one more than the delays. */
  retryDelaysMs?: readonly number[];
}): Mailer {
  const { log } = options;
  const retryDelaysMs = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  const { stopSignal } = options.background;
  let deliver: (message: Message) => Promise<void>;
  let describe: string;

  if (options.smtpUrl) {
    const transport: Transporter = nodemailer.createTransport(options.smtpUrl);
    describe = redactUrl(options.smtpUrl);
    deliver = async (message) => {
      await transport.sendMail({ from: options.from, ...message });
    };
  } else {
    const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
    describe = `outbox folder ${options.outboxDir}`;
    deliver = async (message) => {
      const info = await transport.sendMail({ from: options.from, ...message });
      await fs.mkdir(options.outboxDir, { recursive: true, mode: 0o700 });
      const file = path.join(options.outboxDir, `${Date.now()}-${info.messageId.replace(/[^\w.-]/g, '')}.eml`);
      // Written beside the folder, then renamed in: whoever reads the outbox (`latchkey outbox`,
      // a test) never sees half a mail.
      const partial = path.join(path.dirname(options.outboxDir), `.${path.basename(file)}.partial`);
      await fs.writeFile(partial, info.message as Buffer, { mode: 0o600 });
      await fs.rename(partial, file);
      log.info({ file }, 'mail written to the outbox');
    };
  }

  async function sendWithRetries(message: Message): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await deliver(message);
        return;
      } catch (error) {
        const delay = retryDelaysMs[attempt];
        // The recipient and subject only: the body carries the secret.
        const context = { to: message.to, subject: message.subject, attempt: attempt + 1, err: (error as Error).message };
        if (delay === undefined || stopSignal.aborted) {
          log.error(context, stopSignal.aborted ? 'mail could not be delivered before shutdown; giving up' : 'mail could not be delivered; giving up');
          return;
        }
        log.error(context, 'mail delivery failed; will retry');
        // Shutdown cuts the wait short: one last attempt now, rather than holding the exit.
        await sleep(delay, undefined, { signal: stopSignal }).catch(() => {});
      }
    }
  }

  return {
    describe,
    enqueue(message) {
      options.background.run('mail delivery', () => sendWithRetries(message));
    },
  };
}
