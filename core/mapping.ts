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
 * `up`'s partitions, and [namedLo, namedHi), the periods the mapping names in the same index
 * space before they are cut to `up`'s partitions (a lag reaching back past the first, a window
 * sticking out past the last; the same as [lo, hi) for a static node or mapping `all`), or
 * `missing`, 1 for a static key `up` lacks.
 */
export type UpstreamRange = { lo: number; hi: number; namedLo: number; namedHi: number; missing: number };

export function upstreamRange(down: NodePartitions, j: number, up: NodePartitions, mapping: Mapping): UpstreamRange {
  const kind = mappingKind(mapping);
  if (kind === 'all') return { lo: 0, hi: up.size, namedLo: 0, namedHi: up.size, missing: 0 };
  if (down.grain === 'static') {
    const i = up.indexOf(down.key(j));
    return i < 0 ? { lo: 0, hi: 0, namedLo: 0, namedHi: 0, missing: 1 } : { lo: i, hi: i + 1, namedLo: i, namedHi: i + 1, missing: 0 };
  }
  return timeRangeInto({ lo: 0, hi: 0, namedLo: 0, namedHi: 0, missing: 0 }, down, j, up, mapping);
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
  const scratch: UpstreamRange = { lo: 0, hi: 0, namedLo: 0, namedHi: 0, missing: 0 };
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
  out.namedLo = first + from;
  out.namedHi = mapping === 'identity' ? first + 1 : last + to + 1;
  out.lo = min(max(out.namedLo, 0), up.size);
  out.hi = min(max(out.namedHi, out.lo), up.size);
  out.missing = 0;
  return out;
}
