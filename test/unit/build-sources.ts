/** What `npm run build` compiles (tsconfig.build.json), for the tests that hold the package and the image to it. */
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The sources the build compiles, relative to the repository's root. */
export function compiledSources(): string[] {
  const path = join(ROOT, 'tsconfig.build.json');
  const { config, error } = ts.readConfigFile(path, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, path).fileNames.map((file) => relative(ROOT, file));
}

/** `dist/a/b.js` (or `./dist/a/b.d.ts`) → `a/b.ts`, the source it is compiled from; undefined outside dist/. */
export function sourceOf(target: string): string | undefined {
  const path = target.replace(/^\.\//, '');
  return path.startsWith('dist/') ? path.slice('dist/'.length).replace(/(\.d)?\.js$|\.d\.ts$/, '.ts') : undefined;
}
