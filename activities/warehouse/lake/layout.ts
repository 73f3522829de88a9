/**
 * Where a lake keeps things, so that any Parquet reader finds the published data without
 * backfill:
 *
 *   <lake>/<node>/<partition>.parquet                  the published version of each partition
 *   <lake>/<node>/_versions/<partition>/<n>.parquet    every version, immutable once written
 *   <lake>/_backfill/catalog.duckdb                    the ledger, the pointers, the datasets' views
 *
 * A dataset's directory holds exactly its published partitions, one file each (a hard link to
 * the version's file, or a copy where links are not possible); readers skip `_`-prefixed paths
 * by convention (Spark, pyarrow, polars' hive scan), so `spark.read.parquet('<lake>/orders')`
 * or `read_parquet('<lake>/orders/*.parquet')` reads what backfill's view shows.
 */
import { constants, copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const CATALOG_DIR = '_backfill';
export const CATALOG_FILE = 'catalog.duckdb';
export const VERSIONS_DIR = '_versions';
/** How the names of files on their way into place begin (`LakeLayout.scratch`). */
const INCOMING = '_incoming-';

/**
 * A partition key as a file name: letters, digits, `-` and `=` stay, anything else (and a
 * leading `_`, which readers would skip) is percent-encoded, so `2024-01-01` stays as it is and
 * no key reaches outside its directory.
 */
export function fileKey(partition: string): string {
  let out = '';
  for (const [i, char] of [...partition].entries()) {
    const plain = /[A-Za-z0-9=-]/.test(char) || (char === '_' && i > 0);
    out += plain ? char : [...Buffer.from(char)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out.length > 0 ? out : '%';
}

/**
 * A partition key as a case-insensitive file system (macOS' default APFS, Windows) compares its
 * file names: `fileKey` keeps only ASCII letters as they are, so two keys name the same files
 * there exactly when they are equal with those letters in lower case.
 */
export function foldedKey(partition: string): string {
  return partition.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}

/** The names Windows keeps for its devices, in any case and with any extension (`CON`, `con.parquet`, `COM1`...). */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)/i;

/**
 * The device Windows would take a file or directory `name` for, or undefined. Names that end in
 * a dot or a space, which Windows also cannot hold, need no test here: `fileKey` encodes both,
 * and dataset names have neither.
 */
export function windowsDevice(name: string): string | undefined {
  return WINDOWS_DEVICE.exec(name)?.[1];
}

export class LakeLayout {
  constructor(readonly root: string) {}

  get catalogDir(): string {
    return join(this.root, CATALOG_DIR);
  }

  get catalog(): string {
    return join(this.catalogDir, CATALOG_FILE);
  }

  /** DuckDB's spill directory of this process (`temp_directory`), named so that a later process on this machine knows whether its owner lives. */
  temporary(host: string, pid: number): string {
    return join(this.catalogDir, `tmp-${hostLabel(host)}-${pid}`);
  }

  /** Marker files of the processes waiting for the catalogue. */
  get waiting(): string {
    return join(this.catalogDir, 'waiting');
  }

  dataset(node: string): string {
    return join(this.root, node);
  }

  /** The directory of a partition's versions. */
  versions(node: string, partition: string): string {
    return join(this.root, node, VERSIONS_DIR, fileKey(partition));
  }

  version(node: string, partition: string, version: number): string {
    return join(this.versions(node, partition), `${version}.parquet`);
  }

  published(node: string, partition: string): string {
    return join(this.root, node, `${fileKey(partition)}.parquet`);
  }

  /** What a dataset's view reads: its published files. */
  publishedGlob(node: string): string {
    return join(this.root, node, '*.parquet');
  }

  /** A name beside `path` for a file on its way there (`_`-prefixed: readers skip it). */
  scratch(node: string): string {
    mkdirSync(join(this.root, node, VERSIONS_DIR), { recursive: true });
    return join(this.root, node, VERSIONS_DIR, `${INCOMING}${randomBytes(6).toString('hex')}.parquet`);
  }
}

/** A host name as it goes into a file name: letters, digits, '.' and '-'. */
function hostLabel(host: string): string {
  return host.replace(/[^A-Za-z0-9.-]/g, '_');
}

/** Whether a process with this id lives on this machine (one of another user's counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A spill directory of a release that named it by the process id alone, untouched this long, is a dead process's. */
const UNNAMED_TEMPORARY_MS = 3_600_000;

/**
 * Removes the spill directories (`tmp-<host>-<pid>`) that processes of this host which died
 * without closing the lake left in its catalogue directory, and returns their paths. A lake is
 * shared by machines, so another host's stay (their pids mean nothing here), and so do those of
 * the processes alive. A directory named by the pid alone (an older release's) goes when no
 * process of that id lives here and nothing changed in it for an hour: a live process elsewhere
 * that spills would have touched it.
 */
export function sweepTemporary(layout: LakeLayout, host: string, now: number, alive: (pid: number) => boolean = processAlive): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(layout.catalogDir);
  } catch {
    return removed;
  }
  const mine = `tmp-${hostLabel(host)}-`;
  for (const name of names) {
    const owned = name.startsWith(mine) ? /^\d+$/.exec(name.slice(mine.length)) : null;
    const unnamed = /^tmp-(\d+)$/.exec(name);
    const pid = Number(owned?.[0] ?? unnamed?.[1] ?? NaN);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    const path = join(layout.catalogDir, name);
    try {
      if (unnamed && now - statSync(path).mtimeMs < UNNAMED_TEMPORARY_MS) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Gone already.
    }
  }
  return removed;
}

/**
 * Removes what writers killed mid-write left beside each dataset's versions (`_incoming-*` files,
 * or directories), last changed before `before`, and returns their paths. Only the catalogue's
 * holder writes them, so a caller that holds it since `before` knows that no live writer owns
 * one of those (a newer one, which a writer without the lock would own, stays).
 */
export function sweepIncoming(layout: LakeLayout, before: number): string[] {
  const removed: string[] = [];
  let datasets: string[];
  try {
    datasets = readdirSync(layout.root);
  } catch {
    return removed;
  }
  for (const node of datasets) {
    if (node.startsWith('_')) continue;
    const directory = join(layout.root, node, VERSIONS_DIR);
    let names: string[];
    try {
      names = readdirSync(directory);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.startsWith(INCOMING)) continue;
      const path = join(directory, name);
      try {
        if (lstatSync(path).mtimeMs >= before) continue;
        rmSync(path, { recursive: true, force: true });
        removed.push(path);
      } catch {
        // Gone already.
      }
    }
  }
  return removed;
}

async function fsyncAsync(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Moves finished files into place, durably: their bytes, then their names. The syncs of a
 * transaction's files go out together, off the main thread (a sync waits for the disk, and
 * the filesystem's journal commits those that wait with it at once).
 */
export async function settleAll(files: ReadonlyArray<{ written: string; target: string; directory: string }>): Promise<void> {
  await Promise.all(files.map((f) => fsyncAsync(f.written)));
  for (const f of files) {
    mkdirSync(f.directory, { recursive: true });
    renameSync(f.written, f.target);
  }
  await Promise.all([...new Set(files.map((f) => f.directory))].map(fsyncAsync));
}

/**
 * Makes `target` the published file of a partition, or removes it (`source` null), atomically
 * for a reader listing the directory: a new link is made beside it and renamed over it.
 */
export function mirror(layout: LakeLayout, node: string, partition: string, source: string | null): void {
  const target = layout.published(node, partition);
  if (source === null) {
    rmSync(target, { force: true });
    return;
  }
  try {
    if (statSync(target).ino === statSync(source).ino) return;
  } catch {
    // No published file yet.
  }
  const incoming = layout.scratch(node);
  try {
    linkSync(source, incoming);
  } catch {
    // A filesystem without hard links (or across devices): a copy holds the same bytes.
    copyFileSync(source, incoming);
  }
  try {
    renameSync(incoming, target);
  } catch (error) {
    try {
      unlinkSync(incoming);
    } catch {
      // Already gone.
    }
    throw error;
  }
}
