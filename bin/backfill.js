#!/usr/bin/env node
// The `backfill` command. In a checkout of the repository it runs the TypeScript sources, so that
// what runs is what is written (a dist/ left by an earlier build may be stale), through the light
// loader of typescript-loader.mjs. Installed, the package holds no sources (package.json "files"):
// it runs the compiled dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const sources = new URL('../client/main.ts', import.meta.url);
if (existsSync(sources)) {
  // Stack traces point into the .ts sources (the loader's JavaScript carries inline source maps).
  process.setSourceMapsEnabled(true);
  const { register } = await import('node:module');
  const cacheDir = fileURLToPath(new URL('../.backfill/cache/typescript', import.meta.url));
  register('./typescript-loader.mjs', { parentURL: import.meta.url, data: { cacheDir } });
  await import(sources.href);
} else {
  await import('../dist/client/main.js');
}
