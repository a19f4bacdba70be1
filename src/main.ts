// The `latchkey` executable (bin/latchkey.js, `npm start`): runs the command line in src/cli.ts.
import { main } from './cli.ts';

// Everything Latchkey writes (the store, its journal, the outbox, secrets) is for its owner only.
process.umask(0o077);

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error) => {
    console.error('latchkey:', error);
    process.exitCode = 1;
  },
);
