// The data directory: the embedded store, the dev outbox, and the instance secret. It holds
// password hashes and secrets, so it and everything in it are owner-only at every start, even
// when it was made (or restored from a backup) with looser modes.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ConfigError } from './config.ts';

/** chmod 0700 for the directory and its folders, 0600 for every file in them. */
export function makeOwnerOnly(dir: string): void {
  if (!fs.existsSync(dir)) return;
  fs.chmodSync(dir, 0o700);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const item = path.join(dir, entry.name);
    if (entry.isDirectory()) makeOwnerOnly(item);
    else if (entry.isFile()) fs.chmodSync(item, 0o600);
  }
}

const SECRET_FILE = 'secret';

/**
 * The secret that keys the hashes of one-time codes, kept out of the database so a copy of it
 * cannot reverse a 6-digit code: LATCHKEY_SECRET when set, else a random one made at the first
 * start in the data directory (which every instance of a deployment would then have to share).
 */
export function instanceSecret(dataDir: string, configured: string | undefined): Buffer {
  if (configured) return Buffer.from(configured, 'utf8');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, SECRET_FILE);
  try {
    // 'wx': two processes starting at once never both write; the loser reads the winner's.
    fs.writeFileSync(file, crypto.randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const secret = fs.readFileSync(file, 'utf8').trim();
  if (secret.length < 32) throw new ConfigError(`${file} holds no usable secret; delete it or set LATCHKEY_SECRET`);
  return Buffer.from(secret, 'utf8');
}
