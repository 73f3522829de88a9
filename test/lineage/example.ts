/**
 * The shop example run for real (a worker, the shared Temporal dev server, a SQLite warehouse),
 * then the lineage events its workflows emit at each transition, made from what the workflows
 * have then (the run key and start from the result's carry, each node's progress) with the
 * same helpers (core/lineage-input.ts) and the worker's own warehouse. Needs the integration
 * suite's global setup.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createLineageActivities } from '../../activities/lineage/activity.ts';
import type { LineageTransport } from '../../activities/lineage/transports.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import type { EmitLineageResult } from '../../core/lineage-input.ts';
import { backfillEnded, backfillStarted, nodeEnded, nodeStarted, type LineageBackfill } from '../../core/lineage-calls.ts';
import type { BackfillResult } from '../../core/protocol.ts';
import { parseRange, type ResolvedSpec } from '../../core/spec.ts';
import { EXAMPLE_TRANSFORMS, connectClient, exampleSpec, scratch, startTestWorker, uniqueQueue } from '../integration/helpers.ts';

const quiet: Logger = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export type ExampleLineage = { spec: ResolvedSpec; result: BackfillResult; emitted: EmitLineageResult[]; warehousePath: string };

/** Two weeks of the shop example (every node: days, a rolling window, weeks, a month), and its lineage. */
export async function exampleWithLineage(transport: LineageTransport, from = '2024-01-01', to = '2024-01-15'): Promise<ExampleLineage> {
  const queue = uniqueQueue('lineage');
  const dir = scratch('lineage');
  const warehousePath = join(dir, 'warehouse.db');
  const worker = await startTestWorker({ queue, warehousePath, transformModules: [EXAMPLE_TRANSFORMS] });
  const client = await connectClient();
  try {
    const { spec } = await loadSpecFile(exampleSpec(dir, queue));
    const range = parseRange(from, to);
    const { backfillId } = await client.start(spec, { id: `lineage-${randomUUID().slice(0, 8)}`, range, taskQueue: queue });
    const outcome = await client.wait(backfillId, 150_000);
    if (outcome.state !== 'completed') throw new Error(`the example ended ${outcome.state}`);
    const result = await client.result(backfillId);
    const { runKey, startedAt } = result.carry;
    if (startedAt === null) throw new Error('the result carries no start time');

    const lineage = createLineageActivities({
      warehouse: worker.warehouse,
      settings: { enabled: true, namespace: 'backfill', source: 'test', transport: { type: 'console' } },
      producer: 'https://www.npmjs.com/package/backfill/v/0.1.0',
      engineVersion: '0.1.0',
      transport,
    });
    const env = new MockActivityEnvironment({ attempt: 1 }, { logger: quiet });
    const emitted: EmitLineageResult[] = [];
    const emit = async (input: unknown) => void emitted.push((await env.run(lineage.emitLineage, input)) as EmitLineageResult);
    const backfill: LineageBackfill = { backfillId, runKey, startedAt, spec, range };
    const ended = Date.now();
    await emit(backfillStarted(backfill, startedAt));
    for (const node of spec.nodes) await emit(nodeStarted(backfill, node, startedAt));
    for (const node of spec.nodes) await emit(nodeEnded(backfill, node, ended, result.progress.nodes.find((n) => n.id === node.id)!));
    await emit(backfillEnded(backfill, ended, { state: result.state, failedPartitions: result.progress.failed }));
    return { spec, result, emitted, warehousePath };
  } finally {
    await client.close();
    await worker.stop();
  }
}
