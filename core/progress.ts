/** The `progress` a backfill reports: counts per node, pace, throughput and ETA. */
import type { Plan } from './plan.ts';
import type { BackfillState, FailureGroup, Limits, NodeProgress, NodeSettings, NodeStats, Progress } from './protocol.ts';
import { RangeSet } from './ranges.ts';
import type { Readiness } from './readiness.ts';

export type ProgressInputs = {
  backfillId: string;
  name: string;
  state: BackfillState;
  paused: boolean;
  limits: Limits;
  plan: Plan;
  readiness: Readiness;
  reports: Readonly<Record<string, NodeStats>>;
  failures: Readonly<Record<string, FailureGroup[]>>;
  lastSettings: ReadonlyMap<string, NodeSettings>;
  runs: number;
};

/** Partitions per second between the first start and the last finish, or null before two are known. */
function throughputOf(completed: number, first: number | null, last: number | null): number | null {
  if (completed === 0 || first === null || last === null || last <= first) return null;
  return completed / ((last - first) / 1000);
}

/**
 * Seconds until what is left is done: 0 once nothing is left, null while the pace is unknown or
 * all that is left cannot run (blocked or failed): such a node is not done.
 */
function etaOf(left: number, runnable: number, throughput: number | null): number | null {
  if (left === 0) return 0;
  if (runnable === 0) return null;
  return throughput ? runnable / throughput : null;
}

const EXAMPLES = 3;

export function progressOf(inputs: ProgressInputs): Progress {
  const { plan, readiness, reports } = inputs;
  const nodes: NodeProgress[] = plan.nodes.map((node) => {
    const counts = readiness.counts(node.id);
    const report = reports[node.id];
    const running = Math.min(report?.running ?? 0, counts.inHands);
    const throughput = report ? throughputOf(report.completed, report.firstStartedAt, report.lastFinishedAt) : null;
    const settings = inputs.lastSettings.get(node.id);
    const remaining = counts.total - counts.done - counts.failed - counts.blocked;
    return {
      id: node.id,
      total: counts.total,
      done: counts.done,
      running,
      failed: counts.failed,
      blocked: counts.blocked,
      pending: counts.total - counts.done - counts.failed - counts.blocked - running,
      // Before its first settings reach it (just after the start), a node runs at its spec's limits.
      rate: report?.rate !== undefined ? report.rate : settings ? settings.rate : (node.spec.rate ?? null),
      concurrency: settings?.concurrency ?? node.spec.concurrency,
      throttles: report?.throttles ?? 0,
      throughput,
      etaSeconds: etaOf(counts.total - counts.done, remaining, throughput),
      failures: (inputs.failures[node.id] ?? []).map((group) => {
        const ranges = RangeSet.fromJSON(group.ranges);
        const examples: string[] = [];
        for (const index of ranges) {
          if (examples.length >= EXAMPLES) break;
          examples.push(node.partitions.key(index));
        }
        return { message: group.message, type: group.type, partitions: ranges.size, examples };
      }),
    };
  });
  const sum = (pick: (n: NodeProgress) => number) => nodes.reduce((acc, n) => acc + pick(n), 0);
  const reported = Object.values(reports);
  const completed = reported.reduce((acc, r) => acc + r.completed, 0);
  const firsts = reported.map((r) => r.firstStartedAt).filter((v): v is number => v !== null);
  const lasts = reported.map((r) => r.lastFinishedAt).filter((v): v is number => v !== null);
  const throughput = throughputOf(
    completed,
    firsts.length > 0 ? Math.min(...firsts) : null,
    lasts.length > 0 ? Math.max(...lasts) : null,
  );
  const total = sum((n) => n.total);
  const done = sum((n) => n.done);
  const failed = sum((n) => n.failed);
  const blocked = sum((n) => n.blocked);
  const running = sum((n) => n.running);
  return {
    backfillId: inputs.backfillId,
    name: inputs.name,
    state: inputs.state,
    paused: inputs.paused,
    rate: inputs.limits.rate,
    concurrency: inputs.limits.concurrency,
    total,
    done,
    running,
    failed,
    blocked,
    pending: total - done - failed - blocked - running,
    throughput,
    // The slowest node bounds the whole backfill.
    etaSeconds: nodes.some((n) => n.etaSeconds === null && n.total - n.done - n.failed - n.blocked > 0) || total - done - failed - blocked === 0
      ? etaOf(total - done, total - done - failed - blocked, throughput)
      : Math.max(0, ...nodes.map((n) => n.etaSeconds ?? 0)),
    runs: inputs.runs,
    nodes,
  };
}
