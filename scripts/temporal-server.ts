/**
 * Finds the Temporal server binary and its SQL schema tool (production-shaped tests and local
 * clusters on PostgreSQL), each in this order:
 *   1. $TEMPORAL_SERVER_PATH / $TEMPORAL_SQL_TOOL_PATH
 *   2. the project's cache: .backfill/bin/temporal-server and .backfill/bin/temporal-sql-tool
 *   3. a finished `go install` of both sitting in .backfill/bin/server-build (GOBIN of a build started
 *      by hand or by CI in the background), moved into the cache;
 *   4. `go install go.temporal.io/server/cmd/server@v1.29.1 .../cmd/tools/sql@v1.29.1` into a staging
 *      directory under .backfill/bin, then moved into the cache.
 * The schema tool embeds the SQL schemas of its version (`--schema-name postgresql/v12/...`), so
 * running needs neither the Go module cache nor a copy of the schema files.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI_CACHE_DIR, executable, onPath, run } from '../host/temporal-cli.ts';

export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
const MODULE = 'go.temporal.io/server';

export const SERVER_CACHE_PATH = join(CLI_CACHE_DIR, 'temporal-server');
export const SQL_TOOL_CACHE_PATH = join(CLI_CACHE_DIR, 'temporal-sql-tool');
const STAGING_DIR = join(CLI_CACHE_DIR, 'server-build');
/** What `go install` names the two binaries in GOBIN, and where they go in the cache. */
const BUILT = [
  { package: `${MODULE}/cmd/server`, built: 'server', cached: SERVER_CACHE_PATH },
  { package: `${MODULE}/cmd/tools/sql`, built: 'sql', cached: SQL_TOOL_CACHE_PATH },
] as const;

export type TemporalServerBinaries = { server: string; sqlTool: string };
type Log = (line: string) => void;

function fromEnv(variable: string): string | undefined {
  const path = process.env[variable];
  if (!path) return undefined;
  if (!executable(path)) throw new Error(`${variable}=${path} is not an executable file: fix the path or unset it`);
  return path;
}

/** True when `binary --version` names the version we build (a half-written file fails this). */
async function isVersion(binary: string): Promise<boolean> {
  if (!executable(binary)) return false;
  try {
    const { stdout } = await promisify(execFile)(binary, ['--version'], { timeout: 10_000 });
    return stdout.includes(TEMPORAL_SERVER_VERSION.slice(1));
  } catch {
    return false;
  }
}

async function stagedBuildIsComplete(): Promise<boolean> {
  for (const { built } of BUILT) if (!(await isVersion(join(STAGING_DIR, built)))) return false;
  return true;
}

/** Moves the binaries from a directory this process owns into the cache. */
function adopt(dir: string): void {
  try {
    for (const { built, cached } of BUILT) {
      renameSync(join(dir, built), cached);
      chmodSync(cached, 0o755);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Takes a finished build out of the shared staging directory; false when there is none or another process took it. */
async function adoptStagedBuild(log: Log): Promise<boolean> {
  if (!(await stagedBuildIsComplete())) return false;
  const claimed = `${STAGING_DIR}-${process.pid}`;
  try {
    renameSync(STAGING_DIR, claimed);
  } catch {
    return false;
  }
  log(`using the finished build in ${STAGING_DIR}`);
  adopt(claimed);
  return true;
}

/** Builds both binaries (or adopts a finished build in the staging directory) and moves them into the cache. */
export async function buildTemporalServer(log: Log): Promise<void> {
  if (!(await adoptStagedBuild(log))) {
    if (!onPath('go')) {
      throw new Error(
        `no Temporal server binary found: install Go (https://go.dev/dl) so that it can be built, ` +
          `or set TEMPORAL_SERVER_PATH and TEMPORAL_SQL_TOOL_PATH to a temporal-server and temporal-sql-tool of ${TEMPORAL_SERVER_VERSION}`,
      );
    }
    log(`building the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool with go install (about four minutes, once) ...`);
    // A directory of its own: test files running in parallel may build at the same time.
    const gobin = mkdtempSync(`${STAGING_DIR}-`);
    const started = Date.now();
    try {
      await run(
        'go',
        ['install', ...BUILT.map((b) => `${b.package}@${TEMPORAL_SERVER_VERSION}`)],
        { ...process.env, GOBIN: gobin, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
        log,
      );
    } catch (error) {
      rmSync(gobin, { recursive: true, force: true });
      throw error;
    }
    log(`built in ${Math.round((Date.now() - started) / 1000)} s`);
    adopt(gobin);
  }
  log(`installed ${SERVER_CACHE_PATH} and ${SQL_TOOL_CACHE_PATH}`);
}

export async function resolveTemporalServer(options: { log?: Log } = {}): Promise<TemporalServerBinaries> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[temporal-server] ${line}\n`));
  const cached = (path: string) => (executable(path) ? path : undefined);
  const server = fromEnv('TEMPORAL_SERVER_PATH') ?? cached(SERVER_CACHE_PATH);
  const sqlTool = fromEnv('TEMPORAL_SQL_TOOL_PATH') ?? cached(SQL_TOOL_CACHE_PATH);
  if (server && sqlTool) return { server, sqlTool };
  mkdirSync(CLI_CACHE_DIR, { recursive: true });
  await buildTemporalServer(log);
  return { server: server ?? SERVER_CACHE_PATH, sqlTool: sqlTool ?? SQL_TOOL_CACHE_PATH };
}
