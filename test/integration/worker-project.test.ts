/**
 * `backfill worker` in a project directory: like `dev`, it loads the transforms ./backfill.yaml
 * lists when --transforms names none, and says which it loaded and from where.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { EXAMPLE_TRANSFORMS, address, runCli, scratch, uniqueQueue, workerProcess } from './helpers.ts';

const workers: WorkerProcess[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
});

function project(name: string): { dir: string; queue: string; spec: string; transforms: string } {
  const dir = scratch(name);
  const queue = uniqueQueue(name);
  const transforms = join(dir, 'transforms.mjs');
  writeFileSync(transforms, "export default { own_rows: ({ partition }) => [{ day: partition, n: 1 }] };\n");
  const spec = join(dir, 'backfill.yaml');
  writeFileSync(
    spec,
    `name: ${name}\ntransforms: [./transforms.mjs]\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-04 }\ndefaults: { taskQueue: ${queue}, retry: { maxAttempts: 1 } }\nnodes:\n  - { id: own, transform: own_rows }\n`,
  );
  return { dir, queue, spec, transforms };
}

describe('backfill worker in a project directory', () => {
  it("runs the transforms ./backfill.yaml lists without --transforms, and names them; --transforms still wins", async () => {
    const { dir, queue, spec, transforms } = project('worker-project');
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), cwd: dir, logFormat: 'text', env: { BACKFILL_LOG_LEVEL: 'INFO' } });
    workers.push(worker);
    await worker.start();
    expect(worker.log).toContain(`transforms from ${transforms} (listed in ${spec})`);

    const id = `${queue}-run`;
    const env = { BACKFILL_TASK_QUEUE: queue };
    expect((await runCli(['start', spec, '--id', id, '--json'], env)).code).toBe(0);
    // Before, every partition failed with UnknownTransform: the worker had only the built-ins.
    const waited = await runCli<{ state: string; progress: { done: number; failed: number } }>(['wait', id, '--timeout', '1m', '--json'], env);
    expect(waited.json, waited.stderr).toMatchObject({ state: 'completed', progress: { done: 3, failed: 0 } });

    const named = workerProcess({ address: address(), queue: uniqueQueue('worker-named'), warehouse: join(dir, 'other.db'), cwd: dir, transforms: [EXAMPLE_TRANSFORMS], logFormat: 'text', env: { BACKFILL_LOG_LEVEL: 'INFO' } });
    workers.push(named);
    await named.start();
    expect(named.log).toContain(`transforms from ${EXAMPLE_TRANSFORMS} (named with --transforms)`);
  }, 60_000);
});
