/** Helpers over mappings and partitions that workflows use. (zod reaches the workflow bundle through core/limits.ts only, on purpose: see test/unit/rooms.test.ts.) */
import type { Grain } from './calendar.ts';
import type { NodePartitions } from './partitions.ts';
import type { Mapping, MappingKind, ResolvedPartitions } from './spec.ts';

export function mappingKind(mapping: Mapping): MappingKind {
  return typeof mapping === 'string' ? mapping : 'lag';
}

export function describeMapping(mapping: Mapping): string {
  return typeof mapping === 'string' ? mapping : `lag(${mapping.lag.from}..${mapping.lag.to})`;
}

export function grainOf(partitions: ResolvedPartitions): Grain | 'static' {
  return partitions.kind === 'time' ? partitions.grain : 'static';
}

/**
 * The upstream partitions that partition `j` of `down` maps to: the index range [lo, hi) of
 * `up`'s partitions, and what the mapping named beyond them, which `up` does not have:
 * `before` partitions before its first and `after` after its last (a lag reaching back past
 * the start, a window sticking out of the range), or `missing` keys of a static node.
 */
export type UpstreamRange = { lo: number; hi: number; before: number; after: number; missing: number };

export function upstreamRange(down: NodePartitions, j: number, up: NodePartitions, mapping: Mapping): UpstreamRange {
  const kind = mappingKind(mapping);
  if (kind === 'all') return { lo: 0, hi: up.size, before: 0, after: 0, missing: 0 };
  if (down.grain === 'static') {
    const i = up.indexOf(down.key(j));
    return i < 0 ? { lo: 0, hi: 0, before: 0, after: 0, missing: 1 } : { lo: i, hi: i + 1, before: 0, after: 0, missing: 0 };
  }
  const w = down.window(j)!;
  const first = up.indexAt(w.start);
  const last = up.indexAt(w.end - 1);
  const lag = typeof mapping === 'string' ? { from: 0, to: 0 } : mapping.lag;
  const wantLo = first + lag.from;
  const wantHi = kind === 'identity' ? first + 1 : last + lag.to + 1;
  const lo = Math.min(Math.max(wantLo, 0), up.size);
  const hi = Math.min(Math.max(wantHi, lo), up.size);
  const before = Math.max(0, Math.min(wantHi, 0) - wantLo);
  const after = Math.max(0, wantHi - Math.max(wantLo, up.size));
  return { lo, hi, before, after, missing: 0 };
}
