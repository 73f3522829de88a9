// How a checkout of the repository runs its TypeScript sources (bin/backfill.js registers this
// module's hooks): each .ts module is stripped of its types by esbuild, as tsx would, and the
// JavaScript is kept in a cache keyed by the file's path, size and modification time, so that
// a command after the first transpiles only what changed. This is lighter than tsx, whose own
// start-up took longer than the whole of `backfill --version`. Only a checkout uses it: an
// installed package runs its compiled dist/.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPESCRIPT = /\.[mc]?ts$/;
/** The compiler options of tsconfig.json that change what esbuild emits. */
const COMPILER_OPTIONS = { target: 'ES2022', verbatimModuleSyntax: true, useDefineForClassFields: true };
const TRANSFORM = { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', tsconfigRaw: { compilerOptions: COMPILER_OPTIONS } };
/** Cached JavaScript is of these options: other options (a change of this file) transpile again. */
const OPTIONS_HASH = createHash('sha1').update(JSON.stringify(TRANSFORM)).digest('hex').slice(0, 12);

/** Where transpiled modules are kept; none when it cannot be written. */
let cacheDir;
let esbuild;

export function initialize(data) {
  try {
    mkdirSync(data.cacheDir, { recursive: true });
    cacheDir = data.cacheDir;
  } catch {
    cacheDir = undefined;
  }
}

/** `./helpers.js` from a TypeScript module means `./helpers.ts` when only that exists (TypeScript's convention). */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const relativeJs = /^\.{1,2}\/.*\.[mc]?js$/.test(specifier) && TYPESCRIPT.test(context.parentURL ?? '');
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !relativeJs) throw error;
    return nextResolve(specifier.replace(/js$/, 'ts'), context);
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TYPESCRIPT.test(url)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const { size, mtimeMs } = statSync(path);
  const stamp = `// ${OPTIONS_HASH} ${size} ${mtimeMs}\n`;
  const cached = cacheDir && join(cacheDir, `${createHash('sha1').update(path).digest('hex')}.js`);
  if (cached) {
    try {
      const source = readFileSync(cached, 'utf8');
      if (source.startsWith(stamp)) return { format: 'module', source, shortCircuit: true };
    } catch {
      // not cached yet
    }
  }
  esbuild ??= await import('esbuild');
  const { code } = esbuild.transformSync(readFileSync(path, 'utf8'), { ...TRANSFORM, sourcefile: path });
  const source = `${stamp}${code}`;
  if (cached) {
    try {
      const staging = `${cached}.${process.pid}`;
      writeFileSync(staging, source);
      renameSync(staging, cached);
    } catch {
      // a read-only cache: transpile again next time
    }
  }
  return { format: 'module', source, shortCircuit: true };
}
