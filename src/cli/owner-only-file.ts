// Files that hold a secret (an export with password hashes, an import's rejected rows) are made
// new, for their owner only. Opening an existing file would keep its mode (0644 stays 0644) and
// whoever already holds it open, or follow a link an attacker planted to a file they can read.
import fs from 'node:fs';
import { StartupError } from '../app/startup-errors.ts';

const CREATE_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** A new file at `file`, mode 0600; one there already is refused, naming `what` (e.g. `--output`). */
export function createOwnerOnly(file: string, what: string): fs.WriteStream {
  let fd: number;
  try {
    fd = fs.openSync(file, CREATE_NEW, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new StartupError(`${what} ${file} exists already: refusing to write into it (it would keep its owner and mode); remove it or name a new file`);
    }
    throw error;
  }
  return fs.createWriteStream(file, { fd });
}

/** As createOwnerOnly, for a file the command itself rewrites on every run: the old one is removed first. */
export function replaceOwnerOnly(file: string, what: string): fs.WriteStream {
  fs.rmSync(file, { force: true });
  return createOwnerOnly(file, what);
}
