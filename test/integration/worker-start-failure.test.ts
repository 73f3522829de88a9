/**
 * A worker whose start fails part way (a transforms module that does not load, a task queue the
 * SDK refuses) ends at once with the reason, and leaves nothing open: no connection to the
 * server, no warehouse file, no native runtime serving metrics. A task queue Temporal reserves
 * is refused as the flags are read, before anything opens.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { describe, expect, it } from 'vitest';
import { localConnection } from '../../client/connection.ts';
import { startWorker } from '../../client/local.ts';
import { freePort, portFree } from '../../host/dev-server.ts';
import { logSettings } from '../../workers/logging.ts';
import { BIN, address, scratch, uniqueQueue, waitFor } from './helpers.ts';

/**
 * `backfill worker` with `args`: its exit code and stderr, or a failure when it is still running
 * after `timeoutMs`. `closedStdout`: its stdout is a pipe whose reader has gone (closed at once).
 */
function workerExit(args: string[], timeoutMs = 30_000, closedStdout = false): Promise<{ code: number | null; stderr: string; ms: number }> {
  const began = Date.now();
  const child = spawn('node', [BIN, 'worker', ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: address(), BACKFILL_WORKFLOW_BUNDLE: inject('workflowBundlePath'), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (closedStdout) child.stdout.destroy();
  else child.stdout.resume();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`backfill worker ${args.join(' ')} still ran after ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, ms: Date.now() - began });
    });
  });
}

describe('backfill worker whose lake is a file', () => {
  it('exits 1 at once, saying the lake is not a directory, before it connects (each activity retried it, and status showed nothing)', async () => {
    const dir = scratch('start-lake-file');
    const file = join(dir, 'lake');
    writeFileSync(file, 'not a lake');
    const ended = await workerExit(['--warehouse', `lake://${file}`, '--task-queue', uniqueQueue('start-lake-file')]);
    expect(ended.code, ended.stderr).toBe(1);
    expect(ended.stderr).toContain(`the lake ${file} is not a directory (a file is there, or in its _backfill): give lake:/// the lake's directory`);
    expect(ended.stderr).not.toContain('search attributes');
  });
});

describe('backfill worker whose transforms module does not load', () => {
  it('exits 1 at once when the module throws as it is imported, naming the module, its error and the fix', async () => {
    const dir = scratch('start-throws');
    const module = join(dir, 'transforms.mjs');
    writeFileSync(module, "throw new Error('the config file is missing');\n");
    const ended = await workerExit(['--transforms', module, '--warehouse', join(dir, 'warehouse.db'), '--task-queue', uniqueQueue('start-throws')]);
    expect(ended.code, ended.stderr).toBe(1);
    expect(ended.stderr).toContain(`could not load transforms from ${module}: importing it failed: the config file is missing: fix the module's top-level code`);
    // It failed before it connected: no warning about the server's namespace comes first.
    expect(ended.stderr).not.toContain('search attributes');
  });

  it('exits 1 at once when the module does not exist, naming the path and where it was given', async () => {
    const dir = scratch('start-missing');
    const module = join(dir, 'nowhere.mjs');
    const ended = await workerExit(['--transforms', module, '--warehouse', join(dir, 'warehouse.db'), '--task-queue', uniqueQueue('start-missing')]);
    expect(ended.code, ended.stderr).toBe(1);
    expect(ended.stderr).toContain(`could not load transforms from ${module}: there is no such file: correct its path in --transforms`);
  });
});

describe('backfill worker given a task queue Temporal reserves', () => {
  it('exits 1 before it connects, naming the flag, the prefix and the fix', async () => {
    const dir = scratch('start-reserved');
    for (const [flags, field] of [
      [['--task-queue', 'warehouse', '__temporal_warehouse=20'], "--task-queue '__temporal_warehouse'"],
      [['--workflow-queue', '__temporal_flows'], "--workflow-queue '__temporal_flows'"],
    ] as const) {
      const ended = await workerExit([...flags, '--warehouse', join(dir, 'warehouse.db')]);
      expect(ended.code, ended.stderr).toBe(1);
      expect(ended.stderr).toContain(`${field} starts with __temporal_, which Temporal reserves for its own task queues: choose a name without that prefix`);
      // Refused as the flags are read: it never connected (no word of the server's namespace) nor opened its warehouse.
      expect(ended.stderr).not.toContain('search attributes');
      expect(ended.stderr).not.toContain('could not start the worker');
      expect(existsSync(join(dir, 'warehouse.db'))).toBe(false);
    }
  });
});

describe('a worker whose step after the start fails', () => {
  it('stops its workers and closes what it opened, saying what failed and the fix, and exits 1', async () => {
    const dir = scratch('start-after');
    // --json prints the settings once the workers poll; the reader of its stdout is gone.
    const ended = await workerExit(['--json', '--warehouse', join(dir, 'warehouse.db'), '--task-queue', uniqueQueue('start-after')], 30_000, true);
    expect(ended.code, ended.stderr).toBe(1);
    expect(ended.stderr).toContain(
      "could not finish starting: could not print the worker's settings on stdout (--json): write EPIPE (whatever read stdout closed it): keep stdout open while it runs (or send it to a file), or leave out --json; stopping it (closing its connection and warehouse)",
    );
    // The worker was fine: the command's own step failed.
    expect(ended.stderr).not.toContain('the worker failed');
    expect(ended.stderr).not.toContain('failed too');
  });
});

/** The inodes of the sockets this process holds open. */
function ownSockets(): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed while listed
    }
  }
  return inodes;
}

/** How many TCP connections of this process are established to `port` (the Temporal server's). */
function connectionsTo(port: number): number {
  const sockets = ownSockets();
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // remote address, state (01: established), inode
      if (fields.length > 9 && fields[2]!.endsWith(`:${hex}`) && fields[3] === '01' && sockets.has(fields[9]!)) count += 1;
    }
  }
  return count;
}

/** Whether this process holds `path` open. */
function holdsOpen(path: string): boolean {
  return readdirSync('/proc/self/fd').some((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
    } catch {
      return false;
    }
  });
}

describe('a worker whose start fails after it connected', () => {
  it('closes what it opened: its workers, connection, warehouse and native runtime (its metrics port)', async () => {
    const dir = scratch('start-late');
    const queue = uniqueQueue('start-late');
    const warehouse = join(dir, 'warehouse.db');
    const serverPort = Number(address().split(':').at(-1));
    const metricsPort = await freePort();
    expect(connectionsTo(serverPort)).toBe(0);
    // The workflow queue's worker and its policy queue's are created; then the SDK refuses the third queue's name.
    const failed = startWorker({
      connection: localConnection(address()),
      transforms: [],
      queues: [{ name: queue }, { name: `__temporal_${queue}` }],
      workflowQueue: queue,
      workflows: true,
      warehouse,
      workflowBundle: inject('workflowBundlePath'),
      telemetry: { log: logSettings('text', 'ERROR'), metrics: { host: '127.0.0.1', port: metricsPort } },
    });
    await expect(failed).rejects.toThrow(`could not start the worker of task queue '__temporal_${queue}'`);
    expect(holdsOpen(warehouse)).toBe(false);
    await waitFor('the connection to the server to close', () => connectionsTo(serverPort) === 0, 10_000);
    await waitFor('the native runtime to stop serving metrics', () => portFree('127.0.0.1', metricsPort), 10_000);
  });
});

describe('a worker whose warehouse cannot be used', () => {
  it('is refused at its start, naming the warehouse and the fix (it started, and each backfill then failed)', async () => {
    const queue = uniqueQueue('no-warehouse');
    const url = new URL(process.env.BACKFILL_TEST_POSTGRES_URL ?? 'postgres://backfill:backfill@127.0.0.1:5432/postgres');
    url.pathname = '/no_such_database_of_backfill';
    const warehouse = url.toString();
    const failed = startWorker({
      connection: localConnection(address()),
      transforms: [],
      queues: [{ name: queue }],
      workflowQueue: queue,
      workflows: false,
      warehouse,
      telemetry: { log: logSettings('text', 'ERROR') },
    });
    await expect(failed).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(new RegExp(`^the warehouse .*no_such_database_of_backfill cannot be used: .*database "no_such_database_of_backfill" does not exist: fix --warehouse \\(or \\$BACKFILL_WAREHOUSE\\), or make it reachable`)) });
  });
});

describe("backfill worker's start-up line", () => {
  it('names the policy it enforces and where lineage goes (both were logged at a level the default text log hides)', async () => {
    const dir = scratch('start-line');
    const policy = join(dir, 'backfill.policy.yaml');
    writeFileSync(policy, 'version: 1\ncaps:\n  backfill: { rate: 100 }\n');
    const events = join(dir, 'events.ndjson');
    // A queue of its own for workflows too: a worker with a policy on the shared 'backfill' queue would be seen by other files' workers without one.
    const queue = uniqueQueue('start-line');
    const child = spawn('node', [BIN, 'worker', '--policy', policy, '--warehouse', join(dir, 'warehouse.db'), '--workflow-queue', queue, '--task-queue', queue], {
      env: { ...process.env, TEMPORAL_ADDRESS: address(), BACKFILL_WORKFLOW_BUNDLE: inject('workflowBundlePath'), NO_COLOR: '1', OPENLINEAGE__TRANSPORT__TYPE: 'file', OPENLINEAGE__TRANSPORT__LOG_FILE_PATH: events },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const line = await waitFor('the worker to say it polls', async () => stderr.split('\n').find((l) => l.startsWith('worker polling ')), 60_000);
      expect(line).toMatch(new RegExp(`; policy ${policy.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(sha256:[0-9a-f]+\\); OpenLineage on: file ${events.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, job namespace `));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
