/**
 * What a backfill's published partitions stand for after its checks failed part of it: a new
 * run (retry-failed, resume) skips every published partition, so a fix in the spec does not
 * reach them, and datasets downstream of them may be left holding older versions.
 */
import type { NodeProgress, Progress } from './protocol.ts';
import { RangeSet } from './ranges.ts';
import type { ReadinessJSON } from './readiness.ts';
import { ancestorsOf } from './graph.ts';
import { shellWord } from './shell-word.ts';
import type { PartitionRange, ResolvedNode, ResolvedSpec } from './spec.ts';
import { formatInstant } from './calendar.ts';

/** A node's partitions that this backfill published (or kept) and a new run leaves as they are. */
export type KeptOutput = { node: string; partitions: number };
/** A new run's kept partitions, and the range of the backfill (for the command that recomputes them). */
export type KeptOldOutput = {
  nodes: KeptOutput[];
  range: PartitionRange;
  /** The new spec went to the running backfill (resume or retry-failed --spec), not to a new run. */
  running?: true;
};

/** What a node's partitions compute: a change here changes their data (checks, limits and queues do not). */
const computes = (node: ResolvedNode) => JSON.stringify([node.transform, node.sql ?? null, node.params]);

/**
 * The nodes whose transform, SQL or parameters differ between `previous` and `next` and that have
 * done partitions in `readiness`, with how many: those keep what the previous code made.
 */
export function keptOldOutput(previous: ResolvedSpec, next: ResolvedSpec, readiness: ReadinessJSON): KeptOutput[] {
  const before = new Map(previous.nodes.map((n) => [n.id, n]));
  const kept: KeptOutput[] = [];
  for (const node of next.nodes) {
    const old = before.get(node.id);
    const done = readiness[node.id] ? RangeSet.fromJSON(readiness[node.id]!.done).size : 0;
    if (old && done > 0 && computes(old) !== computes(node)) kept.push({ node: node.id, partitions: done });
  }
  return kept;
}

const listed = (kept: readonly KeptOutput[]) => kept.map((k) => `${k.node} ${k.partitions}`).join(', ');
const total = (kept: readonly KeptOutput[]) => kept.reduce((sum, k) => sum + k.partitions, 0);

/** A run's range as the command line's flags: ` --from 2024-02-01 --to 2024-03-01` (whole days without their time). */
export function rangeFlags(range: PartitionRange): string {
  const text = (ms: number) => formatInstant(ms).replace(/T00:00:00Z$/, '');
  return `${range.from !== undefined ? ` --from ${text(range.from)}` : ''}${range.to !== undefined ? ` --to ${text(range.to)}` : ''}`;
}

/** The command that recomputes published partitions whose spec changed, and every partition that reads them. */
export const rerunChangedCommand = (backfillId: string, spec: string, rangeFlags = '') => `backfill start ${spec} --id ${shellWord(backfillId)} --rerun --only-changed${rangeFlags}`;

/** The warning line of a new run that leaves `kept` (none: no line), naming the spec file the user gave. */
export function keptOutputLines(backfillId: string, kept: KeptOldOutput | undefined, specFile: string): string {
  const warning = kept ? keptOutputWarning(kept.nodes, rerunChangedCommand(backfillId, shellWord(specFile), rangeFlags(kept.range)), kept.running === true) : null;
  return warning === null ? '' : `\n  ⚠ ${warning}`;
}

/**
 * The warning of a retry-failed or resume with a new spec that leaves published partitions made
 * by the old one (`running`: the running backfill took the spec); null when there are none.
 */
export function keptOutputWarning(kept: readonly KeptOutput[], recompute: string, running = false): string | null {
  if (kept.length === 0) return null;
  const n = total(kept);
  const skips = running ? 'the backfill goes on with the new spec for what it has not published' : 'a new run skips published partitions';
  return (
    `${n} published partition${n === 1 ? '' : 's'} keep${n === 1 ? 's' : ''} what the old spec made (${listed(kept)}): ${skips}, so the new SQL, transform or parameters do not reach ${n === 1 ? 'it' : 'them'}, ` +
    `nor what reads ${n === 1 ? 'it' : 'them'} downstream. If ${n === 1 ? 'it is' : 'they are'} wrong too, once ${running ? 'the backfill' : 'this run'} has ended recompute ${n === 1 ? 'it' : 'them'} and what reads ${n === 1 ? 'it' : 'them'}: ${recompute}`
  );
}

type Counted = Pick<NodeProgress, 'id' | 'done' | 'failed' | 'blocked' | 'failures' | 'dependsOn'>;

/**
 * The nodes upstream of `index`, directly or not, that published partitions in this backfill. The
 * nodes are in dependency order: progress without `dependsOn` (an older worker's) counts every
 * node before it, which may name a node of a parallel branch.
 */
function publishedBefore(nodes: readonly Counted[], index: number): Counted[] {
  if (nodes[index]!.dependsOn === undefined) return nodes.slice(0, index).filter((n) => n.done > 0);
  const upstream = ancestorsOf(nodes.map((n) => ({ id: n.id, upstream: n.dependsOn ?? [] }))).get(nodes[index]!.id)!;
  return nodes.slice(0, index).filter((n) => upstream.has(n.id) && n.done > 0);
}

/**
 * After a check failed on a node whose upstream partitions this backfill published: those may be
 * what is wrong (a check downstream catches what the upstream's own checks let through), and
 * retry-failed would read them again. Null when no check failed there.
 */
export function upstreamSuspect(progress: Pick<Progress, 'backfillId'> & { nodes: readonly Counted[] }, checkFailedType: string): string | null {
  // The last such node: the furthest downstream, with the most upstream data that could explain it.
  let index = progress.nodes.length - 1;
  while (index >= 0 && !(progress.nodes[index]!.failures.some((f) => f.type === checkFailedType) && publishedBefore(progress.nodes, index).length > 0)) index--;
  if (index < 0) return null;
  const upstream = publishedBefore(progress.nodes, index).map((n) => ({ node: n.id, partitions: n.done }));
  return (
    `${progress.nodes[index]!.id} failed a check on data this backfill published upstream (${listed(upstream)}): if that data is wrong, retry-failed keeps it (it skips published partitions); ` +
    `after the fix, '${rerunChangedCommand(progress.backfillId, '<spec>')}' (same --from/--to) recomputes what the fix changed and what reads it`
  );
}

/**
 * Datasets that may be left disagreeing: nodes that published partitions in this backfill while
 * nodes after them have failed or blocked partitions, which keep their versions from before (made
 * from the upstream data as it was). Progress counts versions, not what they hold: where the new
 * upstream versions hold the same data as the old ones, nothing disagrees, so it says "may" and
 * how to tell. Null when no such pair exists.
 */
export function mixedDatasets(progress: Pick<Progress, 'backfillId'> & { nodes: readonly Counted[] }): string | null {
  const behind = progress.nodes.map((n, i) => ({ n, i })).filter(({ n, i }) => n.failed + n.blocked > 0 && publishedBefore(progress.nodes, i).length > 0);
  if (behind.length === 0) return null;
  const upstream = publishedBefore(progress.nodes, behind[behind.length - 1]!.i).map((n) => `${n.id} ${n.done}`);
  const left = behind.map(({ n }) => `${n.id} ${n.failed + n.blocked}`).join(', ');
  const id = shellWord(progress.backfillId);
  return (
    `datasets may disagree: this backfill published ${upstream.join(', ')}, but the failed or blocked partitions of ${left} keep their older versions, made from the upstream data as it was ` +
    `(the same data where the new upstream versions changed nothing: their checksums in 'backfill lineage <node> <partition>' tell); ` +
    `'backfill retry-failed ${id}' completes them, 'backfill rollback ${id}' undoes the backfill`
  );
}
