/**
 * A coarser node's first or last partition whose period reaches past its upstream's partitions
 * (a weekly node over a daily one whose spec starts on a Friday): its `window` mapping names
 * upstream periods the upstream node does not have, which it reads as far as an earlier backfill
 * published them, so on a first backfill that week sums three days without a word. `plan` notes
 * it, with where the upstream would have to start (or end) for whole periods. A `lag` mapping
 * reaching before the start (a rolling week's first six days) is the mapping's own nature and
 * is not noted; neither is a range narrowed by --from and --to (the spec's partitions decide).
 */
import { mappingKind } from './mapping.ts';
import { NodePartitions } from './partitions.ts';
import type { Mapping, ResolvedNode } from './spec.ts';

/** An ISO instant, as a date when it is midnight UTC. */
function instant(ms: number): string {
  return new Date(ms).toISOString().replace('T00:00:00.000Z', '').replace('.000Z', 'Z');
}

const count = (n: number, grain: string) => `${n} ${grain}${n === 1 ? '' : 's'}`;

/** One edge: the node (`target`: its partitions in the range) and its upstream (`up`: all of its partitions). */
type Edge = { node: string; target: NodePartitions; upstream: string; up: NodePartitions; mapping: Mapping };

function edgeNotes({ node, target, upstream, up, mapping }: Edge): string[] {
  if (mappingKind(mapping) !== 'window' || target.grain === 'static' || up.grain === 'static' || target.size === 0 || up.size === 0) return [];
  const notes: string[] = [];
  const first = target.window(0)!;
  const firstUp = up.window(0)!;
  if (first.start < firstUp.start && first.end > firstUp.start) {
    const before = -up.indexAt(first.start);
    notes.push(
      `${node}'s first partition ${target.key(0)} begins ${count(before, up.grain)} before ${upstream}'s first partition (${up.key(0)}): it reads ${before === 1 ? 'that one' : 'those'} as far as an earlier backfill published ${before === 1 ? 'it' : 'them'}, ` +
        `so on a first backfill it covers part of its ${target.grain}. For whole ${target.grain}s, start ${upstream}'s partitions at ${instant(first.start)}`,
    );
  }
  const last = target.window(target.size - 1)!;
  const lastUp = up.window(up.size - 1)!;
  if (last.end > lastUp.end && last.start < lastUp.end) {
    const after = up.indexAt(last.end - 1) + 1 - up.size;
    notes.push(
      `${node}'s last partition ${target.key(target.size - 1)} ends ${count(after, up.grain)} after ${upstream}'s last partition (${up.key(up.size - 1)}): it reads ${after === 1 ? 'that one' : 'those'} as far as published, ` +
        `so it may cover part of its ${target.grain}. For whole ${target.grain}s, end ${upstream}'s partitions at ${instant(last.end)}`,
    );
  }
  return notes;
}

/**
 * The notes for every node's window edges whose first or last period is partial: of a plan's
 * nodes, or of a spec's with their partitions in the range (`start`, which expands no plan).
 */
export function partialPeriodNotes(nodes: ReadonlyArray<{ spec: ResolvedNode; partitions: NodePartitions }>): string[] {
  const byId = new Map(nodes.map((n) => [n.spec.id, n.spec]));
  return nodes.flatMap(({ spec, partitions }) =>
    spec.dependsOn.flatMap((d) => {
      const upstream = byId.get(d.node);
      return upstream ? edgeNotes({ node: spec.id, target: partitions, upstream: d.node, up: NodePartitions.of(upstream.partitions), mapping: d.mapping }) : [];
    }),
  );
}
