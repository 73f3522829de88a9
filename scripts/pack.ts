/**
 * The npm package as a user gets it (test/integration/package.test.ts): `npm pack` (its prepack
 * runs the build) into a cache keyed by a hash of everything that goes into the package, and
 * `npm install` of that tarball into a fresh project.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PACK_CACHE = join(ROOT, '.backfill', 'pack');
/** Prebuilt better-sqlite3 binaries, in the layout prebuild-install reads with its "local prebuilds" setting. */
const PREBUILDS = join(PACK_CACHE, 'prebuilds');

/** What goes into the package or its build (package.json "files", tsconfig.build.json): a change to any makes a new tarball. */
const INPUTS = [
  'package.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'index.ts', 'transforms.ts', 'bin', 'templates',
  'core', 'workflows', 'activities', 'workers', 'client', 'host', 'examples', 'scripts/build.ts',
];

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).sort().flatMap((entry) => filesUnder(join(path, entry)));
}

export function packageHash(): string {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap((input) => filesUnder(join(ROOT, input)))) {
    hash.update(`${relative(ROOT, file)}\0`).update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** The environment without npm's own variables: an npm run from inside `npm test` would otherwise inherit the repository's settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'));
  return { ...env, ...extra };
}

export type Run = { stdout: string; stderr: string };

export function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<Run> {
  return new Promise((done, failed) => {
    execFile(command, args, { cwd: options.cwd, env: cleanEnv(options.env), timeout: options.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) failed(new Error(`${command} ${args.join(' ')} (in ${options.cwd}) failed: ${error.message}\n${stdout}\n${stderr}`));
      else done({ stdout, stderr });
    });
  });
}

/** The tarball of the package as it is now: built and packed on the first call after a change, else the cached one. */
export async function packTarball(): Promise<{ path: string; cached: boolean }> {
  const path = join(PACK_CACHE, `durable-backfill-${packageHash()}.tgz`);
  if (existsSync(path)) return { path, cached: true };
  mkdirSync(PACK_CACHE, { recursive: true });
  const staging = mkdtempSync(join(PACK_CACHE, 'staging-'));
  try {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', staging], { cwd: ROOT });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string }>;
    if (!packed) throw new Error(`npm pack reported no tarball: ${stdout}`);
    for (const old of readdirSync(PACK_CACHE).filter((name) => name.endsWith('.tgz'))) rmSync(join(PACK_CACHE, old));
    renameSync(join(staging, packed.filename), path);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return { path, cached: false };
}

/** prebuild-install's name for a better-sqlite3 binary of this Node (on glibc; elsewhere the names differ and it builds from source). */
function prebuildName(version: string): string {
  return `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
}

/** Keeps the better-sqlite3 binary installed in `root` (built from source there, the slow part of an install) for the next install of that version. */
async function savePrebuild(root: string): Promise<void> {
  const moduleDir = join(root, 'node_modules', 'better-sqlite3');
  const binary = join(moduleDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(binary)) return;
  const { version } = JSON.parse(readFileSync(join(moduleDir, 'package.json'), 'utf8')) as { version: string };
  const target = join(PREBUILDS, prebuildName(version));
  if (existsSync(target)) return;
  mkdirSync(PREBUILDS, { recursive: true });
  await run('tar', ['-czf', target, 'build/Release/better_sqlite3.node'], { cwd: moduleDir });
}

/**
 * `npm install <tarball>` in `dir`, as a user would, dependencies from the registry (or npm's
 * cache). better-sqlite3's install script takes a binary of its version from the local prebuilds
 * when there is one (this repository's own install, or an earlier run's), else builds it from
 * source (a minute or two) and it is kept for the next run.
 */
export async function installTarball(tarball: string, dir: string): Promise<void> {
  await savePrebuild(ROOT);
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: dir, env: { npm_config_better_sqlite3_local_prebuilds: PREBUILDS } });
  await savePrebuild(dir);
}
