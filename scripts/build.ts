/**
 * `npm run build`: the package as npm ships it, in dist/ (the sources stay out of the package):
 *   - the runtime code compiled to JavaScript, with type declarations (tsconfig.build.json);
 *   - the examples' specs next to their compiled transforms, pointing at the .js modules;
 *   - the workflow bundles, so that a worker starts without webpack (workers/worker.ts).
 * Run: node --import tsx scripts/build.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isSeq, parseDocument } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DIST = join(ROOT, 'dist');

function compile(): void {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${result.status ?? result.signal})`);
}

/** A spec whose `transforms` name .ts modules, rewritten to name their compiled .js. */
export function compiledSpec(yaml: string, file: string): string {
  const document = parseDocument(yaml);
  const transforms = document.get('transforms', true);
  if (transforms !== undefined && !isSeq(transforms)) throw new Error(`${file}: transforms must be a list of module paths`);
  transforms?.items.forEach((_, i) => {
    const module = transforms.get(i);
    if (typeof module === 'string') transforms.set(i, module.replace(/\.(m?)ts$/, '.$1js'));
  });
  return document.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function copyExampleSpecs(): void {
  const examples = join(ROOT, 'examples');
  for (const example of readdirSync(examples, { withFileTypes: true }).filter((entry) => entry.isDirectory())) {
    for (const file of readdirSync(join(examples, example.name)).filter((name) => /\.ya?ml$/.test(name))) {
      const target = join(DIST, 'examples', example.name, file);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, compiledSpec(readFileSync(join(examples, example.name, file), 'utf8'), file));
    }
  }
}

/** Bundles the compiled workflows, as they ship (dist/workers/worker.js bundles dist/workflows/index.js). */
async function bundle(): Promise<void> {
  const worker = (await import(pathToFileURL(join(DIST, 'workers/worker.js')).href)) as typeof import('../workers/worker.ts');
  for (const [kind, file] of Object.entries(worker.PACKAGED_BUNDLES)) {
    const { code } = await worker.bundleWorkflows({ tracing: kind === 'tracing' });
    writeFileSync(join(DIST, file), code);
  }
}

export async function build(): Promise<void> {
  rmSync(DIST, { recursive: true, force: true });
  compile();
  copyExampleSpecs();
  await bundle();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const began = Date.now();
  await build();
  process.stderr.write(`built ${DIST} in ${((Date.now() - began) / 1000).toFixed(1)} s\n`);
}
