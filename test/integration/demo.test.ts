/** `backfill demo` end to end, twice: it completes, and every partition's checksum is reproduced. */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { runDemo } from '../../client/demo.ts';
import type { LocalStack } from '../../client/local.ts';
import type { Progress } from '../../core/protocol.ts';
import { address, scratch, uniqueQueue, waitFor } from './helpers.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/backfill.js');

describe('backfill demo', () => {
  it('completes the example and gives identical checksums on a second run', async () => {
    const home = scratch('demo');
    const env = { ...process.env, BACKFILL_HOME: home, NO_COLOR: '1' };
    const demo = async () => {
      const { stdout } = await run('node', [BIN, 'demo', '--json'], { env, timeout: 240_000, cwd: join(import.meta.dirname, '../..') });
      return JSON.parse(stdout) as { backfillId: string; state: string; partitions: number; total: number; fingerprint: string };
    };
    const first = await demo();
    expect(first).toMatchObject({ state: 'completed', partitions: 1528, total: 1528 });
    const second = await demo();
    expect(second).toMatchObject({ state: 'completed', partitions: 1528 });
    expect(second.backfillId).not.toBe(first.backfillId);
    expect(second.fingerprint).toBe(first.fingerprint);

    const warehouse = new SqliteWarehouse(join(home, 'warehouse.db'));
    try {
      const checksums = async (backfillId: string) =>
        new Map((await warehouse.ledger({ backfillId })).map((row) => [`${row.node}/${row.partition}`, row.checksum]));
      const a = await checksums(first.backfillId);
      const b = await checksums(second.backfillId);
      expect(a.size).toBe(1528);
      expect(b).toEqual(a);
      // Each run wrote its own version: the second is the current one, the first is kept for rollback.
      const history = await warehouse.ledger({ node: 'weekly_revenue', partition: '2024-W10' });
      expect(history.map((r) => [r.version, r.current])).toEqual([[2, true], [1, false]]);
      expect(history[0]!.rowCount).toBeGreaterThan(0);
    } finally {
      await warehouse.close();
    }
  });

  it('stopped by SIGTERM, stops its dev server and worker too', async () => {
    const home = scratch('demo-stopped');
    /** Processes whose command line names this home (the dev server's database is there). */
    const using = () =>
      readdirSync('/proc')
        .filter((pid) => /^\d+$/.test(pid))
        .filter((pid) => {
          try {
            return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(home);
          } catch {
            return false;
          }
        });
    const demo = spawn('node', [BIN, 'demo'], { env: { ...process.env, BACKFILL_HOME: home, NO_COLOR: '1' }, cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    demo.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    await waitFor('the demo to start its backfill', () => stderr.includes('started'), 120_000);
    expect(using().length).toBeGreaterThan(0);
    demo.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(stderr).toMatch(/SIGTERM: cancelling shop-demo-\S+ \(interrupt again to leave it running\), then stopping the dev server and the worker/);
    await waitFor('no process of the demo left', () => using().length === 0, 30_000);
  });

  /** A demo of `spec` in `home`, as a process; `done` resolves with its exit code and what it wrote on stderr. */
  function startDemo(home: string, spec: string, args: string[] = []) {
    const env: NodeJS.ProcessEnv = { ...process.env, BACKFILL_HOME: home, NO_COLOR: '1' };
    // The integration tests let backfills share datasets; a user's demo does not.
    delete env.BACKFILL_SHARED_DATASETS;
    const demo = spawn('node', [BIN, 'demo', '--spec', spec, ...args], { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    demo.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
    demo.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
    const done = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    return { demo, output, done };
  }

  it('runs a spec whose nodes use another task queue: it polls every queue they use', async () => {
    const home = scratch('demo-queues');
    const spec = join(home, 'backfill.yaml');
    writeFileSync(spec, `name: queues\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-05 }\nnodes:\n  - { id: loaded, transform: noop, taskQueue: elsewhere }\n  - { id: rolled, transform: noop, dependsOn: [loaded] }\n`);
    const { demo, output, done } = startDemo(home, spec, ['--json']);
    // Before, the worker polled only 'backfill' and the demo waited for ever.
    const timer = setTimeout(() => demo.kill('SIGTERM'), 90_000);
    const code = await done;
    clearTimeout(timer);
    expect(code, output.stderr).toBe(0);
    // No policy is the demo's design, not something to warn its user about.
    expect(output.stderr).not.toContain('no policy');
    expect(JSON.parse(output.stdout)).toMatchObject({ state: 'completed', partitions: 8, total: 8 });
  });

  it('cancels its backfill when interrupted, and one an earlier demo left running, so that the next demo runs', async () => {
    const home = scratch('demo-interrupted');
    const spec = join(home, 'backfill.yaml');
    writeFileSync(
      spec,
      `name: slow\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-21 }\nnodes:\n  - { id: slept, transform: sleep, params: { ms: 250 }, concurrency: 1, batchSize: 1 }\n`,
    );
    const startedId = (stderr: string) => /backfill (slow-demo-\S+) started/.exec(stderr)?.[1];

    // Killed outright: nothing cleans up. Its backfill stays running in the dev server's state,
    // and its dev server (detached) outlives it: stopped here, as a user would find it stopped.
    const killed = startDemo(home, spec);
    await waitFor('the first demo to start its backfill', () => startedId(killed.output.stderr) !== undefined, 120_000);
    killed.demo.kill('SIGKILL');
    await killed.done;
    const server = (JSON.parse(readFileSync(join(home, 'temporal.db.lock'), 'utf8')) as { pid: number }).pid;
    process.kill(server, 'SIGTERM');
    await waitFor('the orphaned dev server to stop', () => !existsSync(`/proc/${server}`) || readFileSync(`/proc/${server}/stat`, 'utf8').includes(') Z '), 30_000);
    const left = startedId(killed.output.stderr)!;

    const interrupted = startDemo(home, spec);
    await waitFor('the second demo to start its backfill', () => startedId(interrupted.output.stderr) !== undefined, 120_000);
    expect(interrupted.output.stderr).toContain(`cancelling ${left}, which an earlier demo of slow left running`);
    const own = startedId(interrupted.output.stderr)!;
    interrupted.demo.kill('SIGINT');
    expect(await interrupted.done).toBe(130);
    expect(interrupted.output.stderr).toContain(`SIGINT: cancelling ${own} (interrupt again to leave it running), then stopping the dev server and the worker`);

    // Before, this one failed with dataset_busy, naming the interrupted backfill.
    const next = startDemo(home, spec);
    expect(await next.done, next.output.stderr).toBe(0);
    expect(next.output.stderr).not.toContain('left running');
    expect(next.output.stdout).toContain('20/20 partitions');
  });
});

describe('backfill demo: a fatal failure of its worker', () => {
  it('stops the worker and the Temporal dev server, says what failed, and ends with the failure instead of watching for ever', async () => {
    const home = scratch('demo-worker-failed');
    const spec = join(home, 'backfill.yaml');
    writeFileSync(spec, `name: failing\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }\ndefaults: { taskQueue: ${uniqueQueue('demo-failed')} }\nnodes:\n  - { id: a, transform: noop }\n`);
    // The shared dev server, and a worker whose run() fails (its native core) once the backfill is watched.
    let fail: (error: Error) => void = () => undefined;
    const done = new Promise<void>((_, failed) => (fail = failed));
    let stops = 0;
    const stack = {
      server: { options: { dbFile: join(home, 'temporal.db') } },
      address: address(),
      uiUrl: null,
      worker: { done, warehouse: { location: join(home, 'warehouse.db') } },
      stop: async () => {
        stops += 1;
        return null;
      },
    } as unknown as LocalStack;
    let stderr = '';
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    try {
      const demo = runDemo({
        spec,
        json: true,
        port: 0,
        uiPort: 0,
        settings: { home, sharedDatasets: true, logLevel: 'ERROR' },
        startLocal: async () => stack,
        watch: () => {
          fail(new Error('native core failed: Poll failed'));
          return new Promise<Progress>(() => undefined);
        },
      });
      // Before, the demo watched a backfill that no worker would run again: it never ended.
      const timeout = new Promise<never>((_, late) => setTimeout(() => late(new Error('the demo did not end within 30 s of its worker failing')), 30_000).unref());
      await expect(Promise.race([demo, timeout])).rejects.toThrow('native core failed: Poll failed');
    } finally {
      err.mockRestore();
    }
    expect(stops).toBe(1);
    expect(stderr).toContain('the worker failed: native core failed: Poll failed; stopping it and the Temporal dev server (closing its connection and warehouse)');
  });
});
