/** The `backfill` command's entry point (bin/backfill.js, and `node dist/client/main.js` in the container image). */
import { main } from './cli.ts';

await main();
// gRPC handles can keep the process alive after the command is done.
setTimeout(() => process.exit(), 100).unref();
