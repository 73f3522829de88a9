/**
 * The lock beside a dev server's database (`<database>.lock`): who took it, the dev server it
 * started there with its command line, and where that server listens. `host/dev-server.ts` takes
 * and judges it; the command line reads it to link to the Web UI of a dev server backfill started
 * (`runningDevServer`). Node's fs and zod only: `start` reads it before it prints a link.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Whether process `pid` runs; a zombie nobody reaped (a container without init) counts as gone. */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** A dev server's first arguments, before its database: what a lock's command must start with (after the CLI) to name one. */
export const DEV_SERVER_ARGS = ['server', 'start-dev', '--db-filename'];

/**
 * What the lock beside a database says: the process that took it (`owner`) and, once started,
 * the dev server it started there, with its command line, its address and its Web UI (null:
 * headless). A release before this one wrote the pid alone, and one before the address and Web
 * UI wrote neither.
 */
export const LockSchema = z.object({
  owner: z.number().int().positive(),
  pid: z.number().int().positive().optional(),
  command: z.array(z.string()).optional(),
  address: z.string().optional(),
  uiUrl: z.string().nullable().optional(),
});
export type Lock = z.infer<typeof LockSchema>;

/** The lock's path beside database `dbFile`. */
export const lockPath = (dbFile: string): string => `${dbFile}.lock`;

/** The text of the lock at `path`; undefined when it is gone. */
export function lockText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** What a lock's text says; undefined when it says nothing a process could have written (or is gone already). */
export function readLock(raw: string | undefined): Lock | { pid: number } | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return { pid: Number(text) };
  try {
    const parsed = LockSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The parent and the command line of process `pid`: its arguments from /proc, else (macOS) as ps
 * gives them, joined by spaces; undefined where neither tells.
 */
export function processInfo(pid: number): { ppid: number; command: string[] | string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
    return { ppid, command };
  } catch {
    // No /proc (macOS): ps.
  }
  try {
    const line = execFileSync('ps', ['-ww', '-o', 'ppid=,args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const match = /^(\d+)\s+(.*)$/s.exec(line);
    return match ? { ppid: Number(match[1]), command: match[2]! } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `command` (a lock's) names a dev server on database `dbFile`. */
export function namesDevServerOn(command: readonly string[], dbFile: string): boolean {
  const [, ...args] = command;
  return DEV_SERVER_ARGS.every((arg, i) => args[i] === arg) && args[DEV_SERVER_ARGS.length] === dbFile;
}

/** Whether the process `info` describes runs exactly `command`. */
export function runsCommand(info: { command: string[] | string }, command: readonly string[]): boolean {
  return typeof info.command === 'string' ? info.command === command.join(' ') : info.command.length === command.length && info.command.every((arg, i) => arg === command[i]);
}

/**
 * The dev server that a `backfill dev` (or `demo`) runs on database `dbFile` right now, as its
 * lock records it: its address and its Web UI (null: headless). Undefined when none runs there,
 * when the lock's process no longer runs the command it recorded, or when the lock was written
 * by a release that did not record where the server listens.
 */
export function runningDevServer(dbFile: string): { address: string; uiUrl: string | null } | undefined {
  const lock = readLock(lockText(lockPath(dbFile)));
  if (lock === undefined || !('owner' in lock)) return undefined;
  const { pid, command, address, uiUrl } = lock;
  if (pid === undefined || command === undefined || address === undefined || uiUrl === undefined) return undefined;
  // Anyone who writes in BACKFILL_HOME can write a lock: only a running dev server on this very database counts.
  if (!namesDevServerOn(command, dbFile) || !running(pid)) return undefined;
  const info = processInfo(pid);
  if (info === undefined || !runsCommand(info, command)) return undefined;
  return { address, uiUrl };
}
