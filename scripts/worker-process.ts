/** A `backfill worker` in a process of its own, for tests and benchmarks that kill, restart or measure it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stopProcess } from '../host/dev-server.ts';

const BIN = fileURLToPath(new URL('../bin/backfill.js', import.meta.url));

export type WorkerProcessOptions = {
  address: string;
  warehouse: string;
  /** Workflow and activity task queue (default: the worker's own default). */
  queue?: string;
  /** The server-enforced cap on `queue`'s activities per second, across all its workers (each must set the same). */
  queueCap?: number;
  transforms?: string[];
  /** --allow-fault-injection: the sleep transform's crashKeys and hangKeys may kill or hang it. */
  allowFaultInjection?: boolean;
  /** --max-concurrent-activities: partition activities it runs at once. */
  maxConcurrentActivities?: number;
  /** --metrics-port on 127.0.0.1: Prometheus metrics at `metricsUrl`. */
  metricsPort?: number;
  /** --shutdown-grace: how long running partitions get to finish on SIGTERM (default the command's). */
  shutdownGrace?: string;
  /** --log-format (stderr, in `log`). */
  logFormat?: 'text' | 'json';
  env?: Record<string, string>;
  /** The working directory (default: this process's): a project directory's ./backfill.yaml names its transforms. */
  cwd?: string;
  /** Options for node itself, before the script (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** The `backfill` executable to run (default: this repository's bin/backfill.js; e.g. an installed package's). */
  bin?: string;
};

export class WorkerProcess {
  private child: ChildProcess | undefined;
  /** Everything the process wrote to stderr. */
  log = '';

  constructor(private readonly options: WorkerProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get metricsUrl(): string | undefined {
    return this.options.metricsPort === undefined ? undefined : `http://127.0.0.1:${this.options.metricsPort}/metrics`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process; resolves once it polls its task queues. */
  async start(timeoutMs = 60_000): Promise<void> {
    const args = [this.options.bin ?? BIN, 'worker', '--warehouse', this.options.warehouse];
    const { queue, queueCap } = this.options;
    if (queueCap !== undefined && !queue) throw new Error('queueCap needs a queue');
    if (queue) args.push('--workflow-queue', queue, '--task-queue', queueCap === undefined ? queue : `${queue}=${queueCap}`);
    for (const module of this.options.transforms ?? []) args.push('--transforms', module);
    if (this.options.allowFaultInjection) args.push('--allow-fault-injection');
    if (this.options.maxConcurrentActivities !== undefined) args.push('--max-concurrent-activities', String(this.options.maxConcurrentActivities));
    if (this.options.metricsPort !== undefined) args.push('--metrics-port', String(this.options.metricsPort), '--metrics-host', '127.0.0.1');
    if (this.options.logFormat) args.push('--log-format', this.options.logFormat);
    if (this.options.shutdownGrace !== undefined) args.push('--shutdown-grace', this.options.shutdownGrace);
    const child = spawn('node', [...(this.options.nodeArgs ?? []), ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: this.options.address, BACKFILL_LOG_LEVEL: 'ERROR', ...this.options.env },
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(this.options.cwd !== undefined ? { cwd: this.options.cwd } : {}),
    });
    this.child = child;
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      this.log += chunk.toString();
    });
    const deadline = Date.now() + timeoutMs;
    while (!output.includes('worker polling')) {
      if (child.exitCode !== null) throw new Error(`the worker exited: ${output}`);
      if (Date.now() > deadline) throw new Error(`the worker did not poll within ${timeoutMs} ms: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** kill -9: no cleanup, no goodbye to the server. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
  }

  /** Sends `signal` and waits for the process to end, however long it takes: how it ended. */
  async signal(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child || !this.running) throw new Error('the worker is not running');
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, by) => done({ code, signal: by })));
    child.kill(signal);
    return exited;
  }

  /** Sends `signal` and returns at once (a second signal while it stops). */
  send(signal: NodeJS.Signals): void {
    if (!this.child || !this.running) throw new Error('the worker is not running');
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.child && this.running) await stopProcess(this.child);
  }

  /** Resident memory (VmRSS) or its peak (VmHWM) in MB, from /proc. */
  memoryMb(field: 'VmRSS' | 'VmHWM'): number | undefined {
    try {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${this.child?.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }
}
