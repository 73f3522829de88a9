#!/usr/bin/env node
// The `backfill` command. In a checkout of the repository it runs the TypeScript sources through
// tsx, so that what runs is what is written (a dist/ left by an earlier build may be stale).
// Installed, the package holds no sources (package.json "files"): it runs the compiled dist/.
import { existsSync } from 'node:fs';

const sources = new URL('../client/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/client/main.js');
}
