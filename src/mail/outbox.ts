// The dev outbox: without LATCHKEY_SMTP_URL, mail is written here as .eml files, one per
// message, named `<epoch ms>-<message id>.eml`; `latchkey outbox` reads them back decoded.
import fs from 'node:fs/promises';
import path from 'node:path';
import { simpleParser } from 'mailparser';

export function outboxDir(dataDir: string): string {
  return path.join(dataDir, 'outbox');
}

export interface OutboxMail {
  file: string;
  date: string | null;
  from: string | null;
  to: string[];
  subject: string | null;
  text: string;
}

const writtenAt = (name: string) => Number(name.split('-')[0]) || 0;

/** Every mail in the outbox, oldest first; none when the folder does not exist yet. */
export async function readOutbox(dir: string): Promise<OutboxMail[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((name) => name.endsWith('.eml'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  names.sort((a, b) => writtenAt(a) - writtenAt(b) || a.localeCompare(b));
  const mails: OutboxMail[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const parsed = await simpleParser(await fs.readFile(file));
    const to = [parsed.to ?? []].flat().flatMap((group) => group.value.map((a) => a.address ?? ''));
    mails.push({
      file,
      date: parsed.date?.toISOString() ?? null,
      from: parsed.from?.text ?? null,
      to,
      subject: parsed.subject ?? null,
      text: parsed.text ?? '',
    });
  }
  return mails;
}

/** Whether `mail` was sent to `address` (case-insensitive, as logins are). */
export function isAddressedTo(mail: OutboxMail, address: string): boolean {
  return mail.to.some((recipient) => recipient.toLowerCase() === address.trim().toLowerCase());
}
