/**
 * A backfill workflow started as Temporal's own CLI or SDK can start one, with no client check on
 * the way: its input's carry is a blank one (a run that did nothing yet) with `carry` laid over it,
 * malformed or not. The replay recorder and the tests of hand-made starts use it.
 */
import type { Client } from '@temporalio/client';
import { CORE_GENERATION, type BackfillCarry, type BackfillInput } from '../core/protocol.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import { BACKFILL_ID, backfillWorkflowId } from '../workflows/definitions.ts';

export async function startByHand(client: Client, options: { backfillId: string; spec: ResolvedSpec; taskQueue: string; carry: Partial<BackfillCarry> | Record<string, unknown> }) {
  const blank: BackfillCarry = {
    runKey: `${options.backfillId}-run`,
    readiness: {},
    childrenRunning: false,
    paused: false,
    limits: { rate: null, concurrency: null },
    overrides: {},
    reports: {},
    failures: {},
    outbox: {},
    settings: {},
    restarts: {},
    startedAt: null,
    runs: 0,
  };
  const input: BackfillInput = { core: CORE_GENERATION, backfillId: options.backfillId, spec: options.spec, range: {}, carry: { ...blank, ...options.carry } as BackfillCarry };
  return await client.workflow.start('backfillWorkflow', {
    taskQueue: options.taskQueue,
    workflowId: backfillWorkflowId(options.backfillId),
    args: [input],
    typedSearchAttributes: [{ key: BACKFILL_ID, value: options.backfillId }],
  });
}
