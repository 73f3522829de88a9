/** The `backfill` command's entry point (bin/backfill.js, and `node dist/client/main.js` in the container image). */
import { main } from './cli.ts';
import { onStdoutError } from './stdout.ts';

// A reader that stops early (`backfill dev --help | head`) closes the pipe: the command is done, quietly.
process.stdout.on('error', onStdoutError);

await main();
// gRPC handles can keep the process alive after the command is done.
setTimeout(() => process.exit(), 100).unref();
