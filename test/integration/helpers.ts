/** Helpers for integration tests: real workers on the shared dev server, conditions with timeouts. */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { NativeConnection } from '@temporalio/worker';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { installRuntime } from '../../client/local.ts';
import { loadTransforms, type Transform } from '../../activities/transforms.ts';
import type { LineageSettings } from '../../activities/lineage/config.ts';
import { ThreadedWarehouse } from '../../activities/warehouse/sqlite/threaded.ts';
import { createWorkers, type BackfillWorkers, type QueueConfig } from '../../workers/worker.ts';
import { WorkerProcess, type WorkerProcessOptions } from '../../scripts/worker-process.ts';
import { resolveSpec, type ResolvedSpec, type SpecInput } from '../../core/spec.ts';

export const address = () => inject('temporalAddress');

/** A fresh directory for one test's files (warehouse, worker logs). */
export function scratch(name: string): string {
  const dir = join(inject('scratchDir'), `${name}-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A task queue of its own, so that test files running in parallel never share workers. */
export function uniqueQueue(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

export type TestWorker = {
  warehouse: ThreadedWarehouse;
  queue: string;
  workers: BackfillWorkers;
  stop(): Promise<void>;
};

export async function startTestWorker(options: {
  queue: string;
  warehousePath: string;
  transforms?: Record<string, Transform>;
  transformModules?: string[];
  extraQueues?: QueueConfig[];
  /** Let the sleep transform's crashKeys and hangKeys kill or hang this (the test's own) process. */
  allowFaultInjection?: boolean;
  /** Where OpenLineage events go (default: nowhere). */
  lineage?: LineageSettings;
  /** The policy the workers judge every backfill by (backfill worker --policy). */
  policyFile?: string;
}): Promise<TestWorker> {
  // Activity failures are expected in these tests; keep the SDK's warnings about them quiet.
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  const connection = await NativeConnection.connect({ address: address() });
  const warehouse = new ThreadedWarehouse(options.warehousePath);
  const registry = new Map(await loadTransforms(options.transformModules ?? []));
  for (const [name, fn] of Object.entries(options.transforms ?? {})) registry.set(name, fn);
  const workers = await createWorkers({
    connection,
    workflowQueue: options.queue,
    activityQueues: [{ name: options.queue }, ...(options.extraQueues ?? [])],
    warehouse,
    transforms: registry,
    allowFaultInjection: options.allowFaultInjection ?? false,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    lineage: options.lineage ?? { enabled: false, why: 'not asked for by the test' },
    ...(options.policyFile !== undefined ? { policyFile: options.policyFile } : {}),
  });
  const running = workers.run();
  return {
    warehouse,
    queue: options.queue,
    workers,
    stop: async () => {
      workers.shutdown();
      await running;
      await connection.close();
      await warehouse.close();
    },
  };
}

/** A client of the shared dev server, whatever Temporal profile or TEMPORAL_* variables the machine has. */
export async function connectClient(serverAddress = address()): Promise<BackfillClient> {
  return BackfillClient.connect({ settings: localConnection(serverAddress) });
}

/** A spec whose every node runs on `queue` (defaults applied, validated like the CLI does). */
export function testSpec(queue: string, spec: Omit<SpecInput, 'defaults'> & { defaults?: SpecInput['defaults'] }): ResolvedSpec {
  return resolveSpec({ ...spec, defaults: { ...spec.defaults, taskQueue: queue } });
}

/** The error a promise rejects with (it must reject). */
export async function refusal(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => null,
    (error: unknown) => error as Error,
  );
  if (outcome === null) throw new Error('expected a refusal, but it was accepted');
  return outcome;
}

/** Makes an ssh-ed25519 key pair at `file` (ssh-keygen, no passphrase) for `principal`; returns its allowed-signers line. */
export function sshKeygen(file: string, principal: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', principal, '-f', file]);
  const [type, body] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/);
  return `${principal} ${type} ${body}`;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Whether nothing of a running workflow, nor of its running children, is on its way to a worker
 * or held by one: no workflow task, no activity scheduled or started. Only then may a test stop a
 * worker without losing a task: one the server hands to a worker's poll in the instant it stops is
 * dropped (this server cannot let a stopping worker's polls end), and waits for its timeout (ten
 * seconds for a workflow task, its heartbeat timeout, 30 s, for a warehouse activity such as acquireDatasets).
 */
export async function nothingInFlight(client: BackfillClient, workflowId: string): Promise<boolean> {
  const described = await client.client.workflowService.describeWorkflowExecution({ namespace: client.namespace, execution: { workflowId } });
  if (described.pendingWorkflowTask || described.pendingActivities.length > 0) return false;
  for (const child of described.pendingChildren) if (!(await nothingInFlight(client, child.workflowId!))) return false;
  return true;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<ReturnType<BackfillClient['client']['workflow']['getHandle']>['fetchHistory']>>['events']>[number];

/**
 * The workflow tasks of a history that failed in the workflow's code or timed out once a worker
 * held them (the deadlock detector, a worker gone), by their messages. Not what Temporal does
 * again by itself for any workflow, and a test cannot rule out: a task the server refused because
 * an event (a signal, an activity landing) arrived while it completed the workflow (UnhandledCommand),
 * nor one a busy worker did not take from its sticky queue in time (schedule-to-start).
 */
export function taskFailures(events: readonly HistoryEvent[]): string[] {
  return events.flatMap((e) => {
    const timedOut = e.workflowTaskTimedOutEventAttributes;
    if (timedOut) {
      const type = timedOut.timeoutType as unknown;
      return type === 2 || type === 'TIMEOUT_TYPE_SCHEDULE_TO_START' ? [] : ['workflow task timed out'];
    }
    const message = e.workflowTaskFailedEventAttributes ? (e.workflowTaskFailedEventAttributes.failure?.message ?? 'no message') : null;
    return message === null || message === 'UnhandledCommand' ? [] : [message];
  });
}

/**
 * Terminates every workflow still running on `queues` (backfills, their node workflows, hand-made
 * starts), for a file's afterAll: the dev server is shared, and a backfill left waiting (for an
 * approval, a worker, a resume) slows every command that asks all running backfills. A termination,
 * not a cancel: the file's workers may be gone, and a node workflow outlives its terminated parent.
 */
export async function endLeftRunning(client: BackfillClient, queues: readonly string[]): Promise<string[]> {
  if (queues.length === 0) return [];
  const query = `TaskQueue IN (${queues.map((q) => `'${q}'`).join(', ')}) AND ExecutionStatus = 'Running'`;
  const open: Array<{ workflowId: string; runId: string }> = [];
  for await (const execution of client.client.workflow.list({ query })) open.push(execution);
  // One that ended meanwhile is no failure of the test file.
  for (const { workflowId, runId } of open) await client.client.workflow.getHandle(workflowId, runId).terminate('test file over').catch(() => undefined);
  return open.map((e) => e.workflowId);
}

/**
 * A gate the test opens: partitions held at it cannot finish before the test has acted (cancelled,
 * paused, terminated), however fast or slow the machine runs, instead of hoping a duration is long enough.
 */
export class Gate {
  #open = false;
  readonly #waiting = new Set<() => void>();

  open(): void {
    this.#open = true;
    for (const release of this.#waiting) release();
    this.#waiting.clear();
  }

  /** Resolves once the gate is open; rejects when `signal` aborts (the activity was cancelled). */
  pass(signal: AbortSignal): Promise<void> {
    if (this.#open) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const release = () => {
        signal.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        this.#waiting.delete(release);
        reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled at the gate'));
      };
      if (signal.aborted) return abort();
      this.#waiting.add(release);
      signal.addEventListener('abort', abort, { once: true });
    });
  }

  /** A transform that writes nothing and holds every partition whose key sorts at or after `from` at this gate. */
  holding(from: string): Transform {
    return async ({ partition, signal }) => {
      if (partition >= from) await this.pass(signal);
    };
  }
}

export const ROOT = join(import.meta.dirname, '../..');
const TEMPORAL = join(ROOT, '.backfill/bin/temporal');

export type CliOutcome = { code: number; stdout: string; stderr: string };

/** Temporal's own command line against the integration dev server. */
export function temporal(args: string[]): Promise<CliOutcome> {
  return new Promise((resolve) => {
    execFile(TEMPORAL, [...args, '--address', address(), '--namespace', 'default'], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A worker in its own process (`backfill worker`), to be killed and restarted like a real one. */
export function workerProcess(options: WorkerProcessOptions): WorkerProcess {
  return new WorkerProcess({ ...options, env: { BACKFILL_WORKFLOW_BUNDLE: inject('workflowBundlePath'), ...options.env } });
}

/** Partitions started per second within [from, to), from their ledger rows. */
export function startRate(rows: ReadonlyArray<{ startedAt: string }>, from: number, to: number): number {
  return rows.filter((r) => Date.parse(r.startedAt) >= from && Date.parse(r.startedAt) < to).length / ((to - from) / 1000);
}

export const BIN = join(ROOT, 'bin/backfill.js');

export type CliResult<T> = { code: number; stdout: string; stderr: string; json: T | undefined };

/** Runs the `backfill` command line as a user does, against the shared dev server; `json` is stdout parsed when it is JSON. */
export async function runCli<T = unknown>(
  args: string[],
  env: Record<string, string> = {},
  options: { timeoutMs?: number; onStderr?: (text: string) => void } = {},
): Promise<CliResult<T>> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = execFile('node', [BIN, ...args], { env: { ...process.env, TEMPORAL_ADDRESS: address(), NO_COLOR: '1', ...env }, timeout: options.timeoutMs ?? 180_000 }, (error, stdout, stderr) => {
      let json: T | undefined;
      try {
        json = JSON.parse(stdout) as T;
      } catch {
        json = undefined;
      }
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr, json });
    });
    if (options.onStderr) child.stderr?.on('data', (chunk: Buffer | string) => options.onStderr!(String(chunk)));
  });
}

/** The shop example as a spec file of its own: its transforms module by absolute path, every node on `queue`. */
export function exampleSpec(dir: string, queue: string, edit: (yaml: string) => string = (y) => y): string {
  const path = join(dir, `shop-${randomUUID().slice(0, 8)}.yaml`);
  const yaml = readFileSync(join(ROOT, 'examples/shop/backfill.yaml'), 'utf8')
    .replace('transforms: [./transforms.ts]', `transforms: [${join(ROOT, 'examples/shop/transforms.ts')}]`)
    .replace('defaults:\n', `defaults:\n  taskQueue: ${queue}\n`);
  writeFileSync(path, edit(yaml));
  return path;
}

export const EXAMPLE_TRANSFORMS = join(ROOT, 'examples/shop/transforms.ts');

/** The system's Chromium (never a downloaded one), for playwright-core: headless, and quiet on the network. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
