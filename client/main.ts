/** The `backfill` command's entry point (bin/backfill.js, and `node dist/client/main.js` in the container image). */
import { main } from './cli.ts';
import { EXIT } from './exit-codes.ts';

// A reader that stops early (`backfill dev --help | head`) closes the pipe: the command is done, quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(EXIT.ok);
});

await main();
// gRPC handles can keep the process alive after the command is done.
setTimeout(() => process.exit(), 100).unref();
