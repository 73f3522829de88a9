/**
 * Finds a `temporal` CLI binary (which embeds the dev server and Web UI), in this order:
 *   1. $TEMPORAL_CLI_PATH
 *   2. `temporal` on PATH
 *   3. a binary in the home's bin/ (CLI_CACHE_DIR): .backfill/bin/temporal, or $BACKFILL_HOME/bin/temporal
 *   4. the per-user cache shared by every home (sharedCliDir): $BACKFILL_CLI_CACHE, else
 *      $XDG_CACHE_HOME/durable-backfill, else ~/.cache/durable-backfill; one binary per version
 *   5. the official download (temporal.download), on a connected machine
 *   6. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1`, where Go is present
 * 5 and 6 install into the shared cache, or into the home's bin/ when the cache cannot be written.
 * Later runs, from any home, reuse the installed binary.
 */
import { spawn } from 'node:child_process';
import { accessSync, chmodSync, constants, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { FROM_SOURCES, PACKAGE_ROOT } from './package.ts';
import { backfillHome } from './settings.ts';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const GO_PACKAGE = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

/**
 * The cache of Temporal binaries. In a checkout of this repository (running its sources): its
 * .backfill/bin, whatever the working directory or $BACKFILL_HOME. Compiled, that is installed in
 * a node_modules (a project's, npx's cache, a global install) or copied into an image, the
 * package's directory is no place for state (npm replaces it on every install; it may be
 * read-only), so the cache goes under the user's project: bin/ in $BACKFILL_HOME, else in ./.backfill.
 */
export const CLI_CACHE_DIR = FROM_SOURCES ? join(PACKAGE_ROOT, '.backfill', 'bin') : join(backfillHome(), 'bin');

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The per-user cache of the Temporal CLI, one folder per version, that every BACKFILL_HOME shares:
 * a second home would otherwise download or build the CLI again into its own bin/.
 * $BACKFILL_CLI_CACHE, else $XDG_CACHE_HOME/durable-backfill, else ~/.cache/durable-backfill.
 */
export function sharedCliDir(env: Env = process.env, home: string = homedir()): string {
  const base = env.BACKFILL_CLI_CACHE || join(env.XDG_CACHE_HOME || join(home, '.cache'), 'durable-backfill');
  return join(resolve(base), 'temporal-cli', TEMPORAL_CLI_VERSION);
}

/**
 * Where the resolver looks for a cached CLI, in order, and where it installs one. In a checkout the
 * project's .backfill/bin is the one cache (CI keeps it between runs). Installed, a binary already
 * in the home's bin/ is used, then the shared cache; a new one goes into the shared cache when it
 * can be written, else into the home's bin/.
 */
export type CliPlaces = { lookIn: string[]; installTo: string };

export function cliPlaces(homeBin: string, shared: string | undefined, writable: (dir: string) => boolean = canWrite): CliPlaces {
  if (shared === undefined || shared === homeBin) return { lookIn: [homeBin], installTo: homeBin };
  return { lookIn: [homeBin, shared], installTo: writable(shared) ? shared : homeBin };
}

/** Whether a folder can be written to, or made in its nearest existing ancestor (without making it). */
export function canWrite(dir: string): boolean {
  let at = resolve(dir);
  while (!existsSync(at)) {
    const parent = dirname(at);
    if (parent === at) return false;
    at = parent;
  }
  try {
    accessSync(at, constants.W_OK);
    return statSync(at).isDirectory();
  } catch {
    return false;
  }
}

export function executable(path: string): boolean {
  try {
    // X_OK holds for a directory too (it can be entered): a folder named temporal on PATH is no CLI.
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  return new Promise((done, failed) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).forEach(log);
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', failed);
    child.on('exit', (code) => (code === 0 ? done() : failed(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

async function download(target: string, log: (line: string) => void): Promise<boolean> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const url = `https://temporal.download/cli/archive/${TEMPORAL_CLI_VERSION.slice(1)}?platform=${process.platform}&arch=${arch}`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
    if (!response.ok || !response.body) return false;
    // In a folder of this process's own, then renamed into place: another process installing at
    // the same moment (the cache is shared by every home) never sees a half-written binary.
    const staging = stagingDir(target, 'download');
    try {
      const archive = join(staging, 'temporal.tar.gz');
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(archive));
      await run('tar', ['-xzf', archive, '-C', staging, 'temporal'], process.env, log);
      renameSync(join(staging, 'temporal'), target);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    return executable(target);
  } catch {
    return false;
  }
}

/** A fresh folder beside `target` for this process alone. */
function stagingDir(target: string, what: string): string {
  const dir = join(target, '..', `.${what}-${process.pid}-${Date.now().toString(36)}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

export type ResolveOptions = {
  log?: (line: string) => void;
  allowDownload?: boolean;
  /** Where to look for and install a cached CLI; unset: the home's bin/, then (installed, not a checkout) the shared cache. */
  places?: CliPlaces;
};

export async function resolveTemporalCli(options: ResolveOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[temporal-cli] ${line}\n`));
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file: fix the path or unset it`);
    return fromEnv;
  }
  const found = onPath('temporal');
  if (found) return found;

  const places = options.places ?? cliPlaces(CLI_CACHE_DIR, FROM_SOURCES ? undefined : sharedCliDir());
  for (const dir of places.lookIn) {
    if (executable(join(dir, 'temporal'))) return join(dir, 'temporal');
  }
  const binDir = places.installTo;
  const cached = join(binDir, 'temporal');
  mkdirSync(binDir, { recursive: true });

  if (options.allowDownload !== false && (await download(cached, log))) {
    log(`downloaded the Temporal CLI ${TEMPORAL_CLI_VERSION} to ${cached}`);
    return cached;
  }

  if (!onPath('go')) {
    throw new Error(
      `no Temporal CLI found and none could be downloaded or built: install Go (https://go.dev/dl) so that it can be built, ` +
        `or put 'temporal' on PATH, or set TEMPORAL_CLI_PATH`,
    );
  }
  log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (takes a few minutes, once) ...`);
  const staging = stagingDir(cached, 'build');
  try {
    await run('go', ['install', GO_PACKAGE], { ...process.env, GOBIN: staging, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' }, log);
    chmodSync(join(staging, 'temporal'), 0o755);
    renameSync(join(staging, 'temporal'), cached);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (!existsSync(cached)) throw new Error(`go install finished but ${cached} is missing`);
  log(`built ${cached}`);
  return cached;
}
