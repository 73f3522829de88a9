/**
 * The shop example run for real (a worker, the shared Temporal dev server, a SQLite warehouse)
 * with the worker's OpenLineage file transport on: the events are what its workflows emitted
 * at each transition. Needs the integration suite's global setup.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunEvent } from '../../core/openlineage.ts';
import type { BackfillResult } from '../../core/protocol.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { parseRange, type ResolvedSpec } from '../../core/spec.ts';
import { EXAMPLE_TRANSFORMS, connectClient, exampleSpec, scratch, startTestWorker, uniqueQueue } from '../integration/helpers.ts';

export type ExampleLineage = { spec: ResolvedSpec; result: BackfillResult; events: RunEvent[]; file: string; warehousePath: string };

/** The events a file transport wrote, in the order it wrote them. */
export function readEvents(file: string): RunEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RunEvent);
}

/** `<eventType> <job>` of every event in `file` of the jobs named `name` and `<name>.*`, in the order they were written. */
export function eventsOf(file: string, name: string): string[] {
  return readEvents(file)
    .filter((e) => e.job.name === name || e.job.name.startsWith(`${name}.`))
    .map((e) => `${e.eventType} ${e.job.name}`);
}

/** Two weeks of the shop example (every node: days, a rolling window, weeks, a month), and the lineage its workflows emitted. */
export async function exampleWithLineage(from = '2024-01-01', to = '2024-01-15'): Promise<ExampleLineage> {
  const queue = uniqueQueue('lineage');
  const dir = scratch('lineage');
  const warehousePath = join(dir, 'warehouse.db');
  const file = join(dir, 'lineage.jsonl');
  const worker = await startTestWorker({
    queue,
    warehousePath,
    transformModules: [EXAMPLE_TRANSFORMS],
    lineage: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'file', path: file, append: true } },
  });
  const client = await connectClient();
  try {
    const { spec } = await loadSpecFile(exampleSpec(dir, queue));
    const range = parseRange(from, to);
    const { backfillId } = await client.start(spec, { id: `lineage-${randomUUID().slice(0, 8)}`, range, taskQueue: queue });
    const outcome = await client.wait(backfillId, 150_000);
    if (outcome.state !== 'completed') throw new Error(`the example ended ${outcome.state}`);
    // The workflow returns only once its lineage events have landed.
    return { spec, result: await client.result(backfillId), events: readEvents(file), file, warehousePath };
  } finally {
    await client.close();
    await worker.stop();
  }
}

/**
 * `START shop`, `COMPLETE shop.orders_raw`, ...: the events of each job in the order of their
 * event times (the events of different jobs are sent at once, and land in any order).
 */
export function jobEvents(events: readonly RunEvent[]): Map<string, string[]> {
  const byJob = new Map<string, RunEvent[]>();
  for (const event of events) byJob.set(event.job.name, [...(byJob.get(event.job.name) ?? []), event]);
  return new Map([...byJob].map(([job, list]) => [job, list.sort((a, b) => a.eventTime.localeCompare(b.eventTime)).map((e) => e.eventType)]));
}
