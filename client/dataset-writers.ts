/**
 * One writer per dataset: which other running backfills write the datasets (nodes) a new
 * backfill would write. Node workflows carry the search attributes BackfillId and
 * BackfillNode; a parent whose node workflows have not started yet (no worker has run its
 * first task) is found by its own BackfillId, and its datasets are read from its input.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { BackfillError } from '../core/errors.ts';
import type { BackfillInput } from '../core/protocol.ts';
import { leftRunning, waitHint } from '../core/busy-datasets.ts';
import { shellWord } from '../core/shell-word.ts';
import { BACKFILL_ID, BACKFILL_NODE, backfillWorkflowId } from '../workflows/definitions.ts';
import { visibilityLiteral } from './visibility.ts';
import { inputNodes } from './input-nodes.ts';

/**
 * Another running backfill and the datasets it shares with the one about to start. `ended`: its
 * backfill workflow ended without its cleanup (`terminated`, `timed_out`) and its node workflows
 * still run: neither waiting for it nor its cancel frees its datasets.
 */
export type DatasetWriter = { backfillId: string; datasets: string[]; ended?: string };


async function list(client: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const executions: WorkflowExecutionInfo[] = [];
  for await (const execution of client.workflow.list({ query })) executions.push(execution);
  return executions;
}

/**
 * The running backfills other than `backfillId` that write any of `datasets`, each with the
 * datasets in common. `inputOf` reads a running parent's input (its spec names its datasets).
 */
export async function datasetWriters(
  client: Client,
  backfillId: string,
  datasets: readonly string[],
  inputOf: (workflowId: string, runId: string) => Promise<BackfillInput | undefined>,
): Promise<DatasetWriter[]> {
  if (datasets.length === 0) return [];
  const wanted = new Set(datasets);
  const writers = new Map<string, Set<string>>();
  const add = (id: string, dataset: string) => (writers.get(id) ?? writers.set(id, new Set()).get(id)!).add(dataset);

  const others = `ExecutionStatus = 'Running' AND BackfillId != ${visibilityLiteral(backfillId)}`;
  const nodes = await list(client, `BackfillNode IN (${datasets.map(visibilityLiteral).join(', ')}) AND ${others}`);
  for (const execution of nodes) {
    const id = execution.typedSearchAttributes.get(BACKFILL_ID);
    const node = execution.typedSearchAttributes.get(BACKFILL_NODE);
    if (id !== undefined && node !== undefined && wanted.has(node)) add(id, node);
  }
  const withNodes = new Set(
    (await list(client, `BackfillNode IS NOT NULL AND ${others}`)).map((e) => e.typedSearchAttributes.get(BACKFILL_ID)),
  );
  const parents = await list(client, `WorkflowType = 'backfillWorkflow' AND ${others}`);
  const running = new Set(parents.map((p) => p.typedSearchAttributes.get(BACKFILL_ID)));
  for (const parent of parents) {
    const id = parent.typedSearchAttributes.get(BACKFILL_ID);
    if (id === undefined || withNodes.has(id)) continue;
    const input = await inputOf(parent.workflowId, parent.runId).catch(() => undefined);
    for (const node of inputNodes(input)) if (wanted.has(node.id)) add(id, node.id);
  }
  const found = await Promise.all(
    [...writers].map(async ([id, set]) => {
      const ended = running.has(id) ? undefined : await endedAs(client, id);
      return { backfillId: id, datasets: [...set].sort(), ...(ended !== undefined ? { ended } : {}) };
    }),
  );
  return found.sort((a, b) => (a.backfillId < b.backfillId ? -1 : 1));
}

/**
 * How the backfill workflow of a writer seen by its node workflows alone ended, when it ended
 * without its cleanup (terminated, or timed out); undefined otherwise (a backfill that ends
 * itself closes its node workflows just after).
 */
async function endedAs(client: Client, backfillId: string): Promise<string | undefined> {
  const status = await client.workflow
    .getHandle(backfillWorkflowId(backfillId))
    .describe()
    // Unknown (not found, or the server would not say): the writer is named as any other.
    .then((d) => d.status.name, () => undefined);
  return status !== undefined && endedWithoutCleanup(status) ? status.toLowerCase() : undefined;
}

/** Whether a backfill workflow of this status ended without its cleanup (terminated, timed out): its leases stay, and its node workflows for a while. */
export function endedWithoutCleanup(status: string): boolean {
  return status === 'TERMINATED' || status === 'TIMED_OUT';
}

const writersText = (writers: readonly DatasetWriter[]): string =>
  writers.map((w) => `${w.datasets.join(', ')} by backfill '${w.backfillId}'${w.ended !== undefined ? ` (it ended ${w.ended})` : ''}`).join('; ');

/**
 * The ways out of busy datasets: `first`, the first writer still running (to wait for or cancel),
 * and `left`, what frees those of each writer that ended without its cleanup (waiting for one
 * frees nothing, nor does its cancel: it is not running).
 */
function waysOut(writers: readonly DatasetWriter[]): { first: string | undefined; left: string[] } {
  return {
    first: writers.find((w) => w.ended === undefined)?.backfillId,
    left: writers.filter((w) => w.ended !== undefined).map((w) => `for '${w.backfillId}', ${leftRunning(w.backfillId)}`),
  };
}

/** What `start` says when the datasets are busy; `waitedMs` when it waited for them in vain. */
export function datasetsBusy(backfillId: string, writers: readonly DatasetWriter[], waitedMs?: number): BackfillError {
  const what = `backfill '${backfillId}' would write datasets that running backfills write (${writersText(writers)})`;
  const { first, left } = waysOut(writers);
  if (waitedMs !== undefined) {
    const fixes = [...(first !== undefined ? [`wait longer, or cancel '${first}'`] : []), ...left];
    return new BackfillError('timeout', `${what}, and they were still busy after ${Math.round(waitedMs / 1000)}s: ${fixes.join('; ')}`);
  }
  const fixes = [
    ...(first !== undefined
      ? [`Wait for it to end (${waitHint(first)}), cancel it ('backfill cancel ${shellWord(first)}'), or start with --wait-for-datasets to start once they are free`]
      : []),
    ...left.map((fix) => `${fix[0]!.toUpperCase()}${fix.slice(1)}`),
  ];
  return new BackfillError('dataset_busy', `${what}: one writer per dataset. ${fixes.join('. ')}`);
}

/** What `plan --estimate --sample` says when the datasets are busy: its sample is a staged backfill of them, and it has no --wait-for-datasets. */
export function sampleBusy(writers: readonly DatasetWriter[]): BackfillError {
  const { first, left } = waysOut(writers);
  const once = [...(first !== undefined ? [`once they have ended (${waitHint(first)})`] : []), ...left.map((fix) => `once they are free (${fix})`)];
  return new BackfillError(
    'dataset_busy',
    `the sample cannot run now: it is a staged backfill of datasets that running backfills write (${writersText(writers)}), one writer per dataset. ` +
      `Sample ${once.join(', and ')}, or estimate without --sample: from the ledger of earlier runs, or with --assume <duration>`,
  );
}
