/**
 * Failures that did not last: partitions of a node that failed in a run of the backfill (after
 * their retries) and were published later, by a retry-failed in that run or a later one. The
 * backfill's progress only knows the failures still standing; every run's node reports
 * (`reportedWork`) know all of them.
 */
import { RangeSet, receivedRanges } from '../../core/ranges.ts';
import type { ReportedWork } from './history.ts';
import type { FixedFailure } from './model.ts';

/** A node of the plan, as far as this needs it. */
type PlanNode = { id: string; partitions: { size: number; key(index: number): string } };

/** Examples a group names, at most. */
const EXAMPLES = 3;

/**
 * By node, the partitions that failed and were published after, grouped by the failure's last
 * message and type, the runs (numbered from 1, oldest first) they failed in and the run that
 * published them; most partitions first. `runs`: each run's node reports, in order.
 */
export function fixedFailures(nodes: readonly PlanNode[], runs: ReadonlyArray<readonly ReportedWork[]>): Map<string, FixedFailure[]> {
  const byNode = new Map<string, FixedFailure[]>();
  for (const node of nodes) {
    const size = node.partitions.size;
    /** Failed, not yet published: the last failure's message and type, and the runs it failed in. */
    const failing = new Map<number, { message: string; type: string; runs: number[] }>();
    const pending = new RangeSet();
    const groups = new Map<string, FixedFailure & { indexes: number[] }>();
    runs.forEach((reports, r) => {
      const run = r + 1;
      for (const report of reports) {
        if (report.node !== node.id) continue;
        // As the workflow does, a report naming partitions the node does not have is left out whole.
        const sets = [report.done, ...report.failures.map((g) => g.ranges)].map((json) => receivedRanges(json, size));
        if (sets.some((set) => typeof set === 'string')) continue;
        const [done, ...failed] = sets as RangeSet[];
        // Done first: a report carries what finished since the last one, which a failure it also carries cannot follow.
        const fixed = done!.minus(done!.minus(pending));
        for (const index of fixed) {
          const failure = failing.get(index)!;
          const key = JSON.stringify([failure.message, failure.type, failure.runs, run]);
          const group = groups.get(key) ?? groups.set(key, { message: failure.message, type: failure.type, failedInRuns: failure.runs, publishedInRun: run, partitions: 0, examples: [], indexes: [] }).get(key)!;
          group.partitions++;
          group.indexes.push(index);
          failing.delete(index);
        }
        pending.deleteAll(fixed);
        report.failures.forEach((group, g) => {
          for (const index of failed[g]!) {
            const before = failing.get(index);
            failing.set(index, { message: group.message, type: group.type, runs: before ? [...new Set([...before.runs, run])] : [run] });
            pending.add(index);
          }
        });
      }
    });
    const list = [...groups.values()]
      .map(({ indexes, ...group }) => ({ ...group, examples: indexes.sort((a, b) => a - b).slice(0, EXAMPLES).map((i) => node.partitions.key(i)) }))
      .sort((a, b) => b.partitions - a.partitions || a.publishedInRun - b.publishedInRun || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
    byNode.set(node.id, list);
  }
  return byNode;
}
