#!/usr/bin/env node
// The `backfill` command: runs the TypeScript sources directly through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../client/cli.ts');
await main();
setTimeout(() => process.exit(), 100).unref();
