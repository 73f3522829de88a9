/**
 * Starts the Temporal dev server (the `temporal` CLI's `server start-dev`) on a SQLite file,
 * so that it survives its own restart, with the project's search attributes registered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname } from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import { BackfillError } from '../core/errors.ts';
import { SEARCH_ATTRIBUTES } from '../client/search-attributes.ts';
import { DEV_SERVER_ARGS, lockPath, lockText, namesDevServerOn, processInfo, readLock, running, runsCommand, type Lock } from './dev-server-lock.ts';
import { resolveTemporalCli } from './temporal-cli.ts';


export type DevServerOptions = {
  dbFile: string;
  port?: number;
  /** Web UI port; null runs headless. */
  uiPort?: number | null;
  ip?: string;
  logFile?: string;
  namespace?: string;
  startTimeoutMs?: number;
  /** Register the project's search attributes at start (default true); false leaves that to `backfill setup`. */
  searchAttributes?: boolean;
  /** More dynamic config, as `key: value` with the value in YAML (e.g. `'matching.enableFairness': 'true'`). */
  dynamicConfig?: Record<string, string>;
  /** Where a note for the user goes (a dev server left running that was stopped); default stderr. */
  log?: (line: string) => void;
};

export type DevServer = {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  options: Required<Omit<DevServerOptions, 'logFile' | 'dynamicConfig' | 'log'>> & { logFile?: string };
  stop(): Promise<void>;
};

/**
 * A TCP port nobody listens on right now, kept from the next few asks for any free port. The
 * OS hands out a port freed a moment ago again to the next process asking for one (on Linux it
 * does: ephemeral ports are random), and a dev server starting beside others (CI runs many) then
 * found its port, or one the Temporal CLI had picked for itself, taken before it could bind it.
 * A connection to the port, closed from the listening side, leaves the port in TIME_WAIT (60 s
 * on Linux): no bind to port 0 gets it meanwhile, while binding it by number still works (Go
 * and Node set SO_REUSEADDR), as the Temporal CLI keeps the ports it picks.
 */
export function freePort(): Promise<number> {
  return new Promise((done, failed) => {
    const server = createServer();
    server.once('error', failed);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || !address) {
        server.close(() => failed(new Error('no port')));
        return;
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        client.destroy();
        server.close(() => done(address.port));
      };
      server.once('connection', (accepted) => {
        // The listening side closes first: it is the side that keeps TIME_WAIT.
        accepted.destroy();
        release();
      });
      const client = connect(address.port, '127.0.0.1');
      // Without the connection the port is still free, only not kept: good enough.
      client.once('error', release);
    });
  });
}

/**
 * Whether `port` on `host` is free: listening on it works. False when something listens there
 * already; rejects when the address cannot be listened on at all (no such interface, no right).
 */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((done, failed) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? done(false) : failed(error)));
    server.listen(port, host, () => server.close(() => done(true)));
  });
}

/**
 * Refuses a port something already listens on. The dev server would exit at once (address in
 * use) while the other server answered in its place, and its caller would run against that one.
 */
export async function requirePortFree(ip: string, port: number, what: string, flag: string): Promise<void> {
  if (await portFree(ip, port)) return;
  throw new Error(`${what} port ${ip}:${port} is in use (another Temporal server, or a backfill dev still running?): stop it, or choose another port with ${flag}`);
}

/** Resolves once the frontend answers and the namespace exists; `tls` when its frontend wants TLS. */
export async function waitForServer(address: string, namespace: string, timeoutMs: number, exited?: () => string | undefined, tls?: TLSConfig): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const why = exited?.();
    if (why) throw new Error(why);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000, ...(tls ? { tls } : {}) });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal server at ${address} did not become ready within ${timeoutMs} ms: ${String(last)}`);
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const cli = await resolveTemporalCli();
  const resolved = {
    dbFile: options.dbFile,
    port: options.port ?? (await freePort()),
    uiPort: options.uiPort === undefined ? await freePort() : options.uiPort,
    ip: options.ip ?? '127.0.0.1',
    namespace: options.namespace ?? 'default',
    startTimeoutMs: options.startTimeoutMs ?? 60_000,
    searchAttributes: options.searchAttributes ?? true,
    ...(options.logFile !== undefined ? { logFile: options.logFile } : {}),
  };
  mkdirSync(dirname(resolved.dbFile), { recursive: true });
  // The lock first: a server an earlier process left running on this database holds the ports
  // asked for again, and stopping it frees them.
  const lock = await lockDatabase(resolved.dbFile, options.log ?? ((line) => process.stderr.write(`${line}\n`)));
  try {
    await requirePortFree(resolved.ip, resolved.port, "the dev server's", '--port');
    if (resolved.uiPort !== null) await requirePortFree(resolved.ip, resolved.uiPort, "the Web UI's", '--ui-port');
  } catch (error) {
    lock.release();
    throw error;
  }
  const args = [
    ...DEV_SERVER_ARGS, resolved.dbFile,
    '--ip', resolved.ip,
    '--port', String(resolved.port),
    '--log-level', 'warn',
    // WAL and a busy timeout: without them the file-backed store fails under load (SQLITE_BUSY).
    '--sqlite-pragma', 'journal_mode=WAL',
    '--sqlite-pragma', 'synchronous=NORMAL',
    '--sqlite-pragma', 'busy_timeout=15000',
    // Timers fire within 100 ms of their time instead of up to a second late (the default shift).
    '--dynamic-config-value', 'history.timerProcessorMaxTimeShift="100ms"',
  ];
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${value}`);
  if (resolved.namespace !== 'default') args.push('--namespace', resolved.namespace);
  if (resolved.searchAttributes) {
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  }
  if (resolved.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(resolved.uiPort));

  const address = `${resolved.ip}:${resolved.port}`;
  const uiUrl = resolved.uiPort === null ? null : `http://localhost:${resolved.uiPort}`;

  let out: number | 'ignore' = 'ignore';
  if (resolved.logFile) {
    mkdirSync(dirname(resolved.logFile), { recursive: true });
    out = openSync(resolved.logFile, 'a');
  }
  // A process group of its own: Ctrl-C in the terminal reaches only this process, which stops
  // the worker before the server (the server gone first, the worker's completions are lost).
  let child: ChildProcess;
  try {
    child = spawn(cli, args, { stdio: ['ignore', out, out], detached: true });
  } catch (error) {
    lock.release();
    throw error;
  }
  stopWithThisProcess(child);
  lock.holdFor(child, [cli, ...args], { address, uiUrl });
  let exit: string | undefined;
  // A binary that cannot be run (EACCES, ENOENT) is an 'error' event: without a listener it would end the process.
  child.once('error', (error) => {
    exit = `the Temporal CLI at ${cli} could not be started: ${error.message}`;
  });
  child.once('exit', (code, signal) => {
    const said = resolved.logFile ? lastLines(resolved.logFile, 5) : '';
    exit = `the Temporal dev server exited (${signal ?? `code ${code}`}) before it was ready${resolved.logFile ? `; see ${resolved.logFile}` : ''}${said ? `. It said last:\n${said}` : ''}`;
  });
  try {
    await waitForServer(address, resolved.namespace, resolved.startTimeoutMs, () => exit);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    address,
    uiUrl,
    process: child,
    options: resolved,
    stop: () => stopProcess(child),
  };
}

/** The last `count` lines of a log (a server that failed at once writes only a few), or '' when it cannot be read. */
function lastLines(file: string, count: number): string {
  try {
    // Its end only: the log is appended to by every start in this home.
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const tail = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, tail, 0, tail.length, size - tail.length);
      return tail.toString('utf8').trimEnd().split('\n').slice(-count).join('\n');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/**
 * Removes the lock at `path` if it is still the one judged (`judged`, its text). Another `dev`
 * taking the same lock over at once may have removed it and put its own there meanwhile: that
 * one stays (moved aside, seen to be another, and linked back), or both would run a server on
 * the database.
 */
function removeIfStill(path: string, judged: string | undefined): void {
  const aside = `${path}.${process.pid}.old`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    if (lockText(aside) !== judged) linkSync(aside, path);
  } catch (error) {
    // A third process's lock is there already.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(aside, { force: true });
  }
}

/** The command that stops process `pid`, for a message. */
function stopCommand(pid: number): string {
  return process.platform === 'win32' ? `taskkill /PID ${pid} /F` : `kill ${pid}`;
}

/** Resolves with whether `pid` has gone within `ms`. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (running(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** SIGTERM, then SIGKILL: a dev server no process of ours runs any more. */
async function stopOrphan(pid: number, dbFile: string): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch (error) {
      // Gone meanwhile.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };
  signal('SIGTERM');
  if (await goneWithin(pid, 10_000)) return;
  signal('SIGKILL');
  if (await goneWithin(pid, 5_000)) return;
  throw new BackfillError('already_exists', `the dev server (pid ${pid}) left running on ${dbFile} did not stop: stop it (kill -9 ${pid}), or set BACKFILL_HOME to another directory`);
}

/**
 * What to do about a lock some process holds: nothing (`stale`: its process is gone, or its pid
 * now names another process), stop the server in it (`orphan`: the dev server started for this
 * database, whose starter is gone: killed with SIGKILL, it could not stop it), or refuse.
 */
function judgeLock(lock: Lock | { pid: number } | undefined, dbFile: string): { verdict: 'stale' } | { verdict: 'orphan'; pid: number } | { verdict: 'refuse'; why: string } {
  const fix = 'or set BACKFILL_HOME to another directory';
  if (lock === undefined) return { verdict: 'stale' };
  if (!('owner' in lock)) {
    if (!running(lock.pid)) return { verdict: 'stale' };
    return { verdict: 'refuse', why: `a dev server already uses ${dbFile} (pid ${lock.pid}): stop it (${stopCommand(lock.pid)}), ${fix}` };
  }
  if (lock.pid === undefined || lock.command === undefined) {
    if (!running(lock.owner)) return { verdict: 'stale' };
    return { verdict: 'refuse', why: `process ${lock.owner} is starting a dev server on ${dbFile}: stop it (${stopCommand(lock.owner)}), ${fix}` };
  }
  if (!running(lock.pid)) return { verdict: 'stale' };
  // The lock is a file in BACKFILL_HOME, which anyone who can write there writes: only the
  // command line of a dev server on this very database makes its pid one to stop.
  if (!namesDevServerOn(lock.command, dbFile)) return { verdict: 'stale' };
  const info = processInfo(lock.pid);
  if (info === undefined) return { verdict: 'refuse', why: `a dev server already uses ${dbFile} (pid ${lock.pid}): stop it (${stopCommand(lock.pid)}), ${fix}` };
  if (!runsCommand(info, lock.command)) return { verdict: 'stale' };
  if (info.ppid !== lock.owner) return { verdict: 'orphan', pid: lock.pid };
  return {
    verdict: 'refuse',
    why: `a dev server already uses ${dbFile} (pid ${lock.pid}, run by process ${lock.owner}: a backfill dev or demo?): stop that (Ctrl-C in its terminal, or ${stopCommand(lock.owner)}), ${fix}`,
  };
}

/**
 * The lock's file is never seen half written (a reader would take it for a stale one): it is
 * written aside, then linked in (which fails, EEXIST, where one is) or renamed over it.
 */
function createWith(path: string, text: string): void {
  const aside = writeAside(path, text);
  try {
    linkSync(aside, path);
  } finally {
    rmSync(aside, { force: true });
  }
}

function replaceWith(path: string, text: string): void {
  renameSync(writeAside(path, text), path);
}

/**
 * Writes `text` to a new file beside `path`, named with this process's pid; returns its path.
 * Created, never opened as found: whoever writes in BACKFILL_HOME could have put a link there,
 * and writing through it would overwrite the file it points to.
 */
function writeAside(path: string, text: string): string {
  const aside = `${path}.${process.pid}`;
  rmSync(aside, { force: true });
  writeFileSync(aside, text, { flag: 'wx' });
  return aside;
}

/**
 * One dev server per database: two on one SQLite file fight over its shards. The lock file
 * beside the database names the process that took it and the server it started; a lock whose
 * processes are gone is taken over, and a server whose starter is gone (killed with SIGKILL, it
 * could not stop the server, which runs in a process group of its own) is stopped first.
 */
async function lockDatabase(dbFile: string, log: (line: string) => void): Promise<{ holdFor(child: ChildProcess, command: string[], where: { address: string; uiUrl: string | null }): void; release(): void }> {
  const path = lockPath(dbFile);
  // A few times at most: another process may take the lock between our removing and creating it.
  let written = JSON.stringify({ owner: process.pid } satisfies Lock);
  for (let taken = false, attempt = 0; !taken; attempt++) {
    try {
      createWith(path, written);
      taken = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error;
      const text = lockText(path);
      const judged = judgeLock(readLock(text), dbFile);
      if (judged.verdict === 'refuse') throw new BackfillError('already_exists', judged.why);
      if (judged.verdict === 'orphan') {
        await stopOrphan(judged.pid, dbFile);
        log(`stopped the Temporal dev server (pid ${judged.pid}) that an earlier process left running on ${dbFile} (it was killed before it could stop it)`);
      }
      removeIfStill(path, text);
    }
  }
  const release = () => {
    try {
      if (readFileSync(path, 'utf8') === written) rmSync(path, { force: true });
    } catch {
      // Gone already.
    }
  };
  return {
    holdFor(child, command, where) {
      if (child.pid !== undefined) {
        written = JSON.stringify({ owner: process.pid, pid: child.pid, command, ...where } satisfies Lock);
        replaceWith(path, written);
      }
      child.once('exit', release);
      child.once('error', release);
    },
    release,
  };
}

/** Dev servers this process started that still run: detached, each would outlive it. */
const children = new Set<ChildProcess>();
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const stopChildren = () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
};

/**
 * A signal nobody else listens for would end this process without its 'exit' event: stop the
 * servers, then end as the signal would have. Where another listener is (dev, demo), it stops
 * the stack itself, worker first.
 */
function onStopSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  stopChildren();
  watchSignals(false);
  process.kill(process.pid, signal);
}

function watchSignals(on: boolean): void {
  if (on) process.on('exit', stopChildren);
  else process.off('exit', stopChildren);
  for (const signal of STOP_SIGNALS) {
    if (on) process.on(signal, onStopSignal);
    else process.off(signal, onStopSignal);
  }
}

/** Stops `child` when this process exits (an uncaught error included) or dies of a signal it does not handle. */
function stopWithThisProcess(child: ChildProcess): void {
  if (children.size === 0) watchSignals(true);
  children.add(child);
  const forget = () => {
    if (children.delete(child) && children.size === 0) watchSignals(false);
  };
  child.once('exit', forget);
  // A CLI that could not be started emits 'error' and no 'exit'.
  child.once('error', forget);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}
