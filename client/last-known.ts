/**
 * What `status` can still tell of a running backfill that no worker answers for (no worker polls
 * its workflow task queue, or none answered): what the server keeps without running its code.
 * The state its workflow last wrote (the `BackfillStatus` search attribute), its last operator
 * action (the memo's `audit`), when its history last moved, and per node its partitions, task
 * queue and whether its workflow runs and with how many batches in flight, and its partitions
 * done and failed as its workflow's history records them: what the run started from (its carry)
 * and the node reports it received since. A node's partitions finished since its last report are
 * not counted: only a query (a worker) tells them.
 */
import { BackfillError } from '../core/errors.ts';
import { type BackfillState, type BackfillCarry } from '../core/protocol.ts';
import { RangeSet } from '../core/ranges.ts';
import type { ReportedWork } from './report/history.ts';
import { formatDuration } from '../core/duration.ts';
import { shellWord } from '../core/shell-word.ts';

export type LastKnownNode = {
  id: string;
  taskQueue: string;
  /** Its partitions in this run's range. */
  partitions: number;
  /** Its node workflow as the server describes it: `running`, `completed`, …, or `not_started`. */
  workflow: string;
  /** Its activities scheduled or running (batches of partitions), as the server lists them. */
  batchesInFlight: number;
  /** Its partitions done and failed as its backfill's workflow last heard (null: its history could not be read). */
  done: number | null;
  failed: number | null;
};

/** Per node, the partitions done and failed that a run's history records. */
export type RecordedCounts = Record<string, { done: number; failed: number }>;

/**
 * What a parent run's history says each node has done and failed: the readiness its carry
 * started from, and the node reports it received since (a later report's done partitions are no
 * longer failed: `retry-failed` of a node ran them again).
 */
export function recordedCounts(carry: Pick<BackfillCarry, 'readiness'> | undefined, reports: readonly ReportedWork[], nodes: readonly string[]): RecordedCounts {
  const counts: RecordedCounts = {};
  for (const node of nodes) {
    const carried = carry?.readiness[node];
    const done = RangeSet.fromJSON(carried?.done);
    const failed = RangeSet.fromJSON(carried?.failed);
    for (const report of reports) {
      if (report.node !== node) continue;
      const finished = RangeSet.fromJSON(report.done);
      done.addAll(finished);
      failed.deleteAll(finished);
      for (const group of report.failures) failed.addAll(RangeSet.fromJSON(group.ranges));
    }
    counts[node] = { done: done.size, failed: failed.minus(done).size };
  }
  return counts;
}

export type LastKnown = {
  backfillId: string;
  /** The state the workflow last wrote (its BackfillStatus search attribute), else `running`. */
  state: BackfillState | string;
  startedAt: string;
  /** When its history last moved: what follows is as of then. Null when it could not be read. */
  asOf: string | null;
  workflowTaskQueue: string;
  nodes: LastKnownNode[];
  /** The last operator action its memo records. */
  lastAction: { action: string; identity: string; at: string; outcome: string } | null;
};

/** The reads `lastKnown` makes (BackfillClient's; fakes in tests). */
export type LastKnownReads = {
  describe(workflowId: string): Promise<{
    startTime: Date;
    taskQueue: string;
    status: string;
    state: string | undefined;
    memo: Record<string, unknown> | undefined;
    pendingActivities: number;
  } | null>;
  lastEventAt(): Promise<Date | null>;
  nodes(): Promise<Array<{ id: string; taskQueue: string; partitions: number }>>;
  /** The counts its workflow's current run records (`recordedCounts`), for these nodes. */
  counts(nodes: readonly string[]): Promise<RecordedCounts>;
};

/** What the memo's `audit` (the newest entry) says, when it is one. */
function auditOf(memo: Record<string, unknown> | undefined): LastKnown['lastAction'] {
  const audit = memo?.audit as { action?: unknown; identity?: unknown; at?: unknown; outcome?: unknown } | undefined;
  if (typeof audit?.action !== 'string' || typeof audit.at !== 'number') return null;
  return { action: audit.action, identity: String(audit.identity ?? 'unknown'), at: new Date(audit.at).toISOString(), outcome: String(audit.outcome ?? 'applied') };
}

export async function lastKnown(backfillId: string, workflowId: string, nodeWorkflowId: (node: string) => string, reads: LastKnownReads): Promise<LastKnown | null> {
  const [description, asOf, nodes] = await Promise.all([reads.describe(workflowId), reads.lastEventAt().catch(() => null), reads.nodes().catch(() => [])]);
  if (!description) return null;
  const [nodeWorkflows, counts] = await Promise.all([
    Promise.all(nodes.map((n) => reads.describe(nodeWorkflowId(n.id)).catch(() => null))),
    reads.counts(nodes.map((n) => n.id)).catch(() => null),
  ]);
  return {
    backfillId,
    state: description.state ?? 'running',
    startedAt: description.startTime.toISOString(),
    asOf: asOf?.toISOString() ?? null,
    workflowTaskQueue: description.taskQueue,
    nodes: nodes.map((n, i) => {
      const workflow = nodeWorkflows[i];
      return {
        ...n,
        workflow: workflow ? workflow.status.toLowerCase() : 'not_started',
        batchesInFlight: workflow?.pendingActivities ?? 0,
        done: counts?.[n.id]?.done ?? null,
        failed: counts?.[n.id]?.failed ?? null,
      };
    }),
    lastAction: auditOf(description.memo),
  };
}

function partitionsText(n: LastKnownNode): string {
  const all = `${n.partitions.toLocaleString('en-US')} partition${n.partitions === 1 ? '' : 's'}`;
  if (n.done === null) return all;
  return `${n.done.toLocaleString('en-US')} of ${all} done${n.failed ? `, ${n.failed.toLocaleString('en-US')} failed` : ''},`;
}

/** `status`'s text of it: marked as last known, as of when, above the error that says why no worker answers. */
export function renderLastKnown(known: LastKnown, now = Date.now()): string {
  const ago = (iso: string) => `${iso} (${formatDuration(Math.max(0, now - Date.parse(iso)))} ago)`;
  const lines = [
    `${known.backfillId} last known: ${known.state}, started ${ago(known.startedAt)}; ${known.asOf ? `its history last moved at ${ago(known.asOf)}` : 'when its history last moved is unknown'}`,
    `  (no worker answers for its workflow, so nothing newer can be read${known.nodes.some((n) => n.done !== null) ? "; partitions done are those its nodes had reported to it, a node's latest ones may not be among them" : ', nor counts of done partitions'})`,
    ...known.nodes.map((n) => `  ${n.id}: ${partitionsText(n)} on task queue ${shellWord(n.taskQueue)}; its workflow ${n.workflow === 'not_started' ? 'not started' : n.workflow}${n.batchesInFlight > 0 ? `, ${n.batchesInFlight} batch${n.batchesInFlight === 1 ? '' : 'es'} in flight` : ''}`),
    ...(known.lastAction ? [`  last operator action: ${known.lastAction.action} by ${known.lastAction.identity} at ${known.lastAction.at} (${known.lastAction.outcome})`] : []),
  ];
  return lines.join('\n');
}

/** `status`'s error when no worker answers, with what is last known of the backfill (`--json` prints both, as `error` and `lastKnown`). */
export class UnansweredWithLastKnown extends BackfillError {
  constructor(
    error: BackfillError,
    readonly lastKnown: LastKnown,
  ) {
    super(error.code, error.message, error.path);
  }
}
