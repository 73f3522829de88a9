/** Helpers over mappings and partitions that workflows use. (zod reaches the workflow bundle through core/limits.ts only, on purpose: see test/unit/rooms.test.ts.) */
import type { Grain } from './calendar.ts';
import type { NodePartitions } from './partitions.ts';
import type { Mapping, MappingKind, ResolvedPartitions } from './spec.ts';

// Read once: in the workflow sandbox every read of a global (`Math`) goes through the vm
// context's interceptor, about a microsecond, and a node workflow maps 100,000 partitions a run.
const { min, max } = Math;

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
  return timeRangeInto({ lo: 0, hi: 0, before: 0, after: 0, missing: 0 }, down, j, up, mapping);
}

/**
 * `upstreamRange` of every partition of `down`, as the index arrays a plan's edge keeps. A node
 * workflow computes them for each of its partitions in every run (100,000 for a node of 100,000
 * hours), so a time node's ranges go through one scratch range instead of two objects each.
 */
export function upstreamRanges(down: NodePartitions, up: NodePartitions, mapping: Mapping): { lo: Int32Array; hi: Int32Array } {
  const n = down.size;
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const timed = down.grain !== 'static' && mappingKind(mapping) !== 'all';
  const scratch: UpstreamRange = { lo: 0, hi: 0, before: 0, after: 0, missing: 0 };
  for (let j = 0; j < n; j++) {
    const range = timed ? timeRangeInto(scratch, down, j, up, mapping) : upstreamRange(down, j, up, mapping);
    lo[j] = range.lo;
    hi[j] = range.hi;
  }
  return { lo, hi };
}

/** A time partition's upstream range (not mapping `all`), written into `out`. */
function timeRangeInto(out: UpstreamRange, down: NodePartitions, j: number, up: NodePartitions, mapping: Mapping): UpstreamRange {
  const start = down.startOf(j);
  const first = up.indexAt(start);
  const last = up.indexAt(down.endOf(start) - 1);
  const from = typeof mapping === 'string' ? 0 : mapping.lag.from;
  const to = typeof mapping === 'string' ? 0 : mapping.lag.to;
  const wantLo = first + from;
  const wantHi = mapping === 'identity' ? first + 1 : last + to + 1;
  out.lo = min(max(wantLo, 0), up.size);
  out.hi = min(max(wantHi, out.lo), up.size);
  out.before = max(0, min(wantHi, 0) - wantLo);
  out.after = max(0, wantHi - max(wantLo, up.size));
  out.missing = 0;
  return out;
}
