/**
 * A small backfill run through the real partition activity on a real warehouse, with the
 * lineage events a workflow would emit around it (EmitLineageInput as docs/concepts.md lists
 * them): the backfill's START, each node's START, the partitions, each node's end, the
 * backfill's end. Three nodes over three days:
 *
 * - `orders`: rows per day, checks that pass;
 * - `daily` (reads `orders`): a warn check that fails on one day (published with a warning);
 * - `flagged` (reads `orders`): an error check that fails every day (nothing published: FAIL).
 */
import type { ApplicationFailure, Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/run-partitions.ts';
import { createLineageActivities } from '../../activities/lineage/activity.ts';
import type { LineageSettings } from '../../activities/lineage/config.ts';
import type { LineageTransport } from '../../activities/lineage/transports.ts';
import { BUILTIN_TRANSFORMS } from '../../activities/transforms.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import type { EmitLineageInput, EmitLineageResult } from '../../core/lineage-input.ts';
import { backfillEnded, backfillStarted, nodeEnded, nodeStarted, type LineageBackfill } from '../../core/lineage-calls.ts';
import type { RunEvent } from '../../core/openlineage.ts';
import type { PartitionTask, RunPartitionsInput } from '../../core/protocol.ts';
import { resolveSpec, type ResolvedNode } from '../../core/spec.ts';

export const SPEC = resolveSpec(
  {
    name: 'shop',
    description: 'Orders and their daily revenue',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
    nodes: [
      {
        id: 'orders',
        sql: `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5)
              SELECT :partition || '-' || n AS order_id, n * 100 AS amount_cents, :partition AS day FROM s`,
        checks: [{ type: 'row_count', min: 1 }, { type: 'not_null', columns: ['order_id'] }, { type: 'unique', columns: ['order_id'] }],
      },
      {
        id: 'daily',
        dependsOn: ['orders'],
        sql: 'SELECT MIN(day) AS day, COUNT(*) AS orders, SUM(amount_cents) AS revenue_cents FROM orders',
        checks: [{ type: 'sql', name: 'quiet day', sql: "SELECT * FROM {{this}} WHERE day = '2024-01-02'", severity: 'warn' }],
      },
      {
        id: 'flagged',
        dependsOn: ['orders'],
        sql: 'SELECT order_id FROM orders',
        checks: [{ type: 'row_count', max: 0 }],
      },
    ],
  },
  new Set(['sql']),
);

export const DAYS = ['2024-01-01', '2024-01-02', '2024-01-03'];
export const STARTED_AT = Date.parse('2024-06-01T08:00:00Z');

const quiet: Logger = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export type ScenarioOptions = {
  warehouse: Warehouse;
  transport: LineageTransport;
  settings?: LineageSettings;
  backfillId?: string;
  runKey?: string;
  logger?: Logger;
};

const node = (id: string): ResolvedNode => SPEC.nodes.find((n) => n.id === id)!;

/** Every call of emitLineage the scenario made, with its input and result. */
export type Emitted = Array<{ input: EmitLineageInput; result: EmitLineageResult }>;

export async function runScenario(options: ScenarioOptions): Promise<Emitted> {
  const backfillId = options.backfillId ?? 'bf-lineage';
  const runKey = options.runKey ?? `run-${backfillId}`;
  const env = new MockActivityEnvironment({ attempt: 1 }, { logger: options.logger ?? quiet });
  const lineage = createLineageActivities({
    warehouse: options.warehouse,
    settings: options.settings ?? { enabled: true, namespace: 'backfill', transport: { type: 'console' }, source: 'test' },
    producer: 'https://www.npmjs.com/package/backfill/v/0.1.0',
    engineVersion: '0.1.0',
    transport: options.transport,
  });
  const partitions = createActivities({ warehouse: options.warehouse, transforms: BUILTIN_TRANSFORMS, codeVersion: 'test' });
  const emitted: Emitted = [];
  // What the workflows pass (core/lineage-input.ts), with a clock of their own.
  const backfill: LineageBackfill = { backfillId, runKey, startedAt: STARTED_AT, spec: SPEC, range: {} };
  let clock = STARTED_AT;
  const now = () => (clock += 1000);
  const emit = async (input: EmitLineageInput) => {
    emitted.push({ input, result: (await env.run(lineage.emitLineage, input)) as EmitLineageResult });
  };

  await emit(backfillStarted(backfill, now()));
  for (const n of SPEC.nodes) await emit(nodeStarted(backfill, n, now()));

  const failed = new Map<string, { count: number; message: string; type: string }>();
  for (const n of SPEC.nodes) {
    for (const [index, key] of DAYS.entries()) {
      const task: PartitionTask = {
        index,
        key,
        window: { start: `${key}T00:00:00Z`, end: `${DAYS[index + 1] ?? '2024-01-04'}T00:00:00Z` },
        inputs: n.dependsOn.map((d) => ({ node: d.node, from: key, to: key })),
        throttled: 0,
      };
      const input: RunPartitionsInput = {
        backfillId,
        runKey,
        workflowId: `backfill/${backfillId}/${n.id}`,
        node: { id: n.id, transform: n.transform, ...(n.sql ? { sql: n.sql } : {}), params: n.params, checks: n.checks, heartbeatTimeout: n.heartbeatTimeout },
        partitions: [task],
        maxAttempts: 1,
      };
      await env.run(partitions.runPartitions, input).catch((error: ApplicationFailure) => failed.set(n.id, { count: (failed.get(n.id)?.count ?? 0) + 1, message: error.message, type: error.type ?? 'Error' }));
    }
  }

  let failedPartitions = 0;
  for (const n of SPEC.nodes) {
    const failures = failed.get(n.id);
    failedPartitions += failures?.count ?? 0;
    const progress = { total: DAYS.length, done: DAYS.length - (failures?.count ?? 0), failed: failures?.count ?? 0, blocked: 0, pending: 0, running: 0, failures: failures ? [{ message: failures.message, type: failures.type, partitions: failures.count }] : [] };
    await emit(nodeEnded(backfill, node(n.id), now(), progress));
  }
  await emit(backfillEnded(backfill, now(), { state: failedPartitions > 0 ? 'completed_with_failures' : 'completed', failedPartitions }));
  return emitted;
}

/** A transport that keeps what it is sent. */
export class CollectingTransport implements LineageTransport {
  readonly name = 'memory';
  readonly events: RunEvent[] = [];
  async send(event: RunEvent): Promise<void> {
    this.events.push(JSON.parse(JSON.stringify(event)) as RunEvent);
  }
}
