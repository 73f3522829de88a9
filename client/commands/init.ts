/** `backfill init [dir]`: a pipeline project. */
import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { HELP_GROUPS, documented } from '../help.ts';
import type { InitResult } from '../init.ts';
import { jsonOption, print } from '../options.ts';
import { PROJECT_SPEC } from '../project.ts';
import { shellWord } from '../../core/shell-word.ts';
import { PACKAGE_ROOT, packageJson } from '../../host/package.ts';

/** `dir` as the `cd` of the next steps: relative to `cwd` below it, else absolute (not `../../tmp/x`), written as a shell word (`shellWord`). */
function cdTarget(dir: string, cwd: string): string {
  const below = relative(cwd, dir);
  const where = below === '..' || below.startsWith(`..${sep}`) || isAbsolute(below) ? dir : below;
  return shellWord(where);
}

/**
 * How the new project installs this package: from the registry when it runs installed (under
 * node_modules), else from the checkout it runs in, whose package the registry may not have
 * (plain `npm install` answers 404 then): the tarball `npm pack` writes there.
 */
export function installSteps(root: string, name: string, version: string, exists: (path: string) => boolean = existsSync): string[] {
  if (root.split(sep).includes('node_modules')) return ['npm install'];
  const tarball = join(root, `${name}-${version}.tgz`);
  const pack = exists(tarball) ? [] : [`(cd ${shellWord(root)} && npm pack)     # builds dist/ and writes ${name}-${version}.tgz`];
  return [...pack, `npm install ${shellWord(tarball)}`];
}

export function renderInit(result: InitResult, cwd = process.cwd(), install = installSteps(PACKAGE_ROOT, packageJson().name, packageJson().version)): string {
  const where = relative(cwd, result.dir) === '' ? '' : cdTarget(result.dir, cwd);
  const kept = result.keptScripts.length === 0 ? '' : result.keptScripts.length === 1 ? ` (your script ${result.keptScripts[0]} was kept)` : ` (your scripts ${result.keptScripts.join(', ')} were kept)`;
  const type = result.replacedType !== null ? `; its "type" is now "module", not "${result.replacedType}" (transforms.ts is an ES module)` : '';
  return [
    `created the pipeline ${pc.bold(result.name)} in ${result.dir}: ${result.written.filter((f) => f !== 'package.json').join(', ')}`,
    `package.json ${result.packageJson === 'updated' ? `gained the scripts and dependencies it lacked${kept}${type}` : 'written'}`,
    '',
    'next:',
    ...(where === '' ? [] : [`  cd ${where}`]),
    ...install.map((step) => `  ${step}`),
    '  npm run plan     validate the spec and preview its partitions',
    '  npm run demo     run it on a local Temporal dev server (Web UI on http://localhost:8233)',
  ].join('\n');
}

export function initCommand() {
  return documented(new Command('init'), HELP_GROUPS.infra, [['backfill init my-pipeline', 'a new pipeline project in ./my-pipeline']])
    .description(`scaffold a pipeline project: ${PROJECT_SPEC} with two datasets, transforms.ts, package.json with scripts, tsconfig.json, README.md, .gitignore`)
    .argument('[dir]', 'the directory (created if missing; default: the working directory)', '.')
    .option('--force', "write into a directory that is not empty: files of the same names are replaced; package.json only gains the scripts and dependencies it lacks (npm init's placeholder test script is replaced), and \"type\": \"module\"")
    .addOption(jsonOption())
    .action(async (dir, options) => {
      const { scaffold } = await import('../init.ts');
      const result = scaffold({ dir, force: options.force === true });
      print(options.json, result, () => renderInit(result));
    });
}
