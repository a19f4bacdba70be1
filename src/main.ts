// The `latchkey` executable (bin/latchkey.js, `npm start`): runs the command line in src/cli/cli.ts.
import os from 'node:os';
import { inspect } from 'node:util';
import { main } from './cli/cli.ts';
import { forTerminal } from './platform/terminal.ts';

// Everything Latchkey writes (the store, its journal, the outbox, secrets) is for its owner only.
process.umask(0o077);

/**
 * The reader of our output went away (`latchkey users export | head`): stop quietly, with the
 * status a shell gives a process SIGPIPE ended, as `yes | head` ends `yes` (node ignores SIGPIPE,
 * so the write fails with EPIPE instead).
 */
const READER_GONE = 128 + os.constants.signals.SIGPIPE;
const readerGone = (error: unknown) => (error as NodeJS.ErrnoException)?.code === 'EPIPE';
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (readerGone(error)) process.exit(READER_GONE);
    throw error;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error) => {
    // A command streaming its output (users export) meets the closed pipe as a failed write.
    if (readerGone(error)) process.exit(READER_GONE);
    process.stderr.write(`latchkey: ${forTerminal(inspect(error), { keepNewlines: true })}\n`);
    process.exitCode = 1;
  },
);
