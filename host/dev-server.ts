/**
 * Starts the Temporal dev server (the `temporal` CLI's `server start-dev`) on a SQLite file,
 * so that it survives its own restart, with the project's search attributes registered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import { BackfillError } from '../core/errors.ts';
import { SEARCH_ATTRIBUTES } from '../client/search-attributes.ts';
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
};

export type DevServer = {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  options: Required<Omit<DevServerOptions, 'logFile' | 'dynamicConfig'>> & { logFile?: string };
  stop(): Promise<void>;
};

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((done, failed) => {
    const server = createServer();
    server.once('error', failed);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : failed(new Error('no port'))));
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
  await requirePortFree(resolved.ip, resolved.port, "the dev server's", '--port');
  if (resolved.uiPort !== null) await requirePortFree(resolved.ip, resolved.uiPort, "the Web UI's", '--ui-port');
  mkdirSync(dirname(resolved.dbFile), { recursive: true });
  const lock = lockDatabase(resolved.dbFile);
  const args = [
    'server', 'start-dev',
    '--db-filename', resolved.dbFile,
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
  lock.holdFor(child);
  let exit: string | undefined;
  // A binary that cannot be run (EACCES, ENOENT) is an 'error' event: without a listener it would end the process.
  child.once('error', (error) => {
    exit = `the Temporal CLI at ${cli} could not be started: ${error.message}`;
  });
  child.once('exit', (code, signal) => {
    exit = `the Temporal dev server exited (${signal ?? `code ${code}`}) before it was ready${resolved.logFile ? `; see ${resolved.logFile}` : ''}`;
  });
  const address = `${resolved.ip}:${resolved.port}`;
  try {
    await waitForServer(address, resolved.namespace, resolved.startTimeoutMs, () => exit);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    address,
    uiUrl: resolved.uiPort === null ? null : `http://localhost:${resolved.uiPort}`,
    process: child,
    options: resolved,
    stop: () => stopProcess(child),
  };
}

/** Whether process `pid` runs; a zombie nobody reaped (a container without init) counts as gone. */
function running(pid: number): boolean {
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

/**
 * One dev server per database: two on one SQLite file fight over its shards. The lock file
 * beside the database holds the pid of the server that uses it (of this process until the
 * server runs); a lock whose process is gone is taken over.
 */
function lockDatabase(dbFile: string): { holdFor(child: ChildProcess): void; release(): void } {
  const path = `${dbFile}.lock`;
  let fd: number | undefined;
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && running(holder)) {
        throw new BackfillError('already_exists', `a dev server already uses ${dbFile} (pid ${holder}): stop it or set BACKFILL_HOME to another directory`);
      }
      rmSync(path, { force: true });
    }
  }
  writeSync(fd, String(process.pid));
  closeSync(fd);
  let holder = process.pid;
  const release = () => {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === holder) rmSync(path, { force: true });
    } catch {
      // Gone already.
    }
  };
  return {
    holdFor(child) {
      if (child.pid !== undefined) {
        holder = child.pid;
        writeFileSync(path, String(holder));
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
