/** Reads a spec file (YAML, JSON, or a TypeScript/JavaScript module) and validates it. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { BackfillError } from '../core/errors.ts';
import { resolveSpec, type ResolvedSpec } from '../core/spec.ts';
import { loadTransforms } from '../activities/transforms.ts';
import { importModule } from '../activities/modules.ts';

async function readDocument(path: string): Promise<unknown> {
  const extension = extname(path).toLowerCase();
  if (!existsSync(path)) throw new BackfillError('invalid_argument', `cannot read the spec file ${path}: it does not exist`, 'spec');
  if (statSync(path).isDirectory()) {
    const inside = join(path, PROJECT_SPEC);
    const fix = existsSync(inside) ? `name its spec file, ${inside}` : `name a spec file (.yaml, .json or .ts), e.g. ${inside}`;
    throw new BackfillError('invalid_argument', `cannot read the spec file ${path}: it is a directory: ${fix}`, 'spec');
  }
  if (['.ts', '.mts', '.js', '.mjs'].includes(extension)) {
    const module = await importModule(path);
    const document = module.default ?? module.spec;
    if (document === undefined) throw new BackfillError('invalid_spec', `${path} exports no spec: export default { name, nodes, ... }`);
    return document;
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new BackfillError('invalid_argument', `cannot read the spec file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'spec');
  }
  if (extension === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new BackfillError('invalid_spec', `${path} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    const first = document.errors[0]!;
    throw new BackfillError('invalid_spec', `${path} is not valid YAML: ${first.message}`);
  }
  return document.toJS() as unknown;
}

export type LoadedSpec = { spec: ResolvedSpec; path: string; transformModules: string[] };

import { PROJECT_SPEC, projectSpec } from './project.ts';

export { PROJECT_SPEC, projectSpec } from './project.ts';

/** The transform modules a spec document lists under `transforms`, resolved against the spec's directory. */
function listedModules(document: unknown, path: string): string[] {
  const listed = (document as { transforms?: unknown })?.transforms;
  return Array.isArray(listed) ? listed.filter((m): m is string => typeof m === 'string').map((m) => resolve(dirname(path), m)) : [];
}

/** A worker's transform modules and where they came from: --transforms, the project's spec, or neither. */
export type WorkerTransforms = { modules: string[]; from: '--transforms' | string | null };

/**
 * The transforms a worker loads (`worker`, `dev`): those named with --transforms; else, in a
 * project directory, those its ./backfill.yaml lists; else `fallback` (`dev`: the example's).
 */
export async function workerTransforms(named: readonly string[], fallback: string[] = [], dir = process.cwd()): Promise<WorkerTransforms> {
  if (named.length > 0) return { modules: named.map((m) => resolve(m)), from: '--transforms' };
  const spec = projectSpec(dir);
  if (spec !== undefined) return { modules: await specTransformModules(spec), from: spec };
  return { modules: fallback, from: null };
}

/** What a worker says of its transforms when it starts. */
export function describeTransforms({ modules, from }: WorkerTransforms): string {
  if (modules.length === 0) return from === null ? 'built-in transforms only (name your modules with --transforms)' : `built-in transforms only (${from} lists no transforms modules)`;
  return `transforms from ${modules.join(', ')} (${from === null ? 'default' : from === '--transforms' ? 'named with --transforms' : `listed in ${from}`})`;
}

/** The transform modules a spec file lists, without validating the rest of it. */
export async function specTransformModules(file: string): Promise<string[]> {
  const path = resolve(file);
  return listedModules(await readDocument(path), path);
}

/**
 * Loads and validates a spec. Transform names are checked against the built-ins and the
 * modules the spec lists under `transforms` (paths relative to the spec file).
 */
export async function loadSpecFile(file: string): Promise<LoadedSpec> {
  const path = resolve(file);
  const document = await readDocument(path);
  const transformModules = listedModules(document, path);
  const missing = transformModules.find((module) => !existsSync(module));
  if (missing !== undefined) {
    throw new BackfillError(
      'invalid_spec',
      `transforms: could not load transforms from ${missing}: there is no such file; the paths under 'transforms' count from the spec's directory (${dirname(path)}): correct the path`,
      'transforms',
    );
  }
  let known: Set<string>;
  try {
    known = new Set((await loadTransforms(transformModules)).keys());
  } catch (error) {
    throw new BackfillError('invalid_spec', `transforms: ${(error as Error).message}`, 'transforms');
  }
  return { spec: resolveSpec(document, known), path, transformModules };
}
