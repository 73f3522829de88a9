/** The ordered partitions of one node: their keys, time windows and index lookups. */
import {
  addPeriods,
  floorTo,
  formatInstant,
  formatKey,
  periodNumber,
  periodsOverlapping,
  type Grain,
} from './calendar.ts';
import type { PartitionRange, ResolvedPartitions } from './spec.ts';

export type PartitionWindow = { start: number; end: number };

export class NodePartitions {
  readonly keys: readonly string[];
  private readonly firstPeriod: number;
  private readonly firstStart: number;
  private keyIndex: Map<string, number> | undefined;

  private constructor(
    readonly grain: Grain | 'static',
    keys: readonly string[],
    firstStart: number,
  ) {
    this.keys = keys;
    this.firstStart = firstStart;
    this.firstPeriod = grain === 'static' ? 0 : periodNumber(firstStart, grain);
  }

  /**
   * The partitions of a node, narrowed to `range` when given. A time partition belongs to
   * the backfill when its period overlaps the range: recomputing days 3–10 of a month
   * recomputes that month's rollup too. Static keys ignore the range.
   */
  static of(partitions: ResolvedPartitions, range: PartitionRange = {}): NodePartitions {
    if (partitions.kind === 'static') return new NodePartitions('static', partitions.keys, 0);
    const start = Math.max(partitions.start, range.from ?? -Infinity);
    const end = Math.min(partitions.end, range.to ?? Infinity);
    const starts = start < end ? periodsOverlapping(start, end, partitions.grain) : [];
    return new NodePartitions(
      partitions.grain,
      starts.map((s) => formatKey(s, partitions.grain)),
      starts[0] ?? floorTo(start, partitions.grain),
    );
  }

  get size(): number {
    return this.keys.length;
  }

  key(index: number): string {
    const key = this.keys[index];
    if (key === undefined) throw new RangeError(`partition index ${index} is outside 0..${this.keys.length - 1}`);
    return key;
  }

  /** The UTC window [start, end) of a time partition; undefined for static keys. */
  window(index: number): PartitionWindow | undefined {
    if (this.grain === 'static') return undefined;
    const start = addPeriods(this.firstStart, this.grain, index);
    return { start, end: addPeriods(start, this.grain, 1) };
  }

  /**
   * Index of the period containing `ms`, counted from this node's first partition; it may
   * fall outside 0..size-1 (a period before or after the backfill's range).
   */
  indexAt(ms: number): number {
    if (this.grain === 'static') throw new TypeError('static partitions have no time index');
    return periodNumber(ms, this.grain) - this.firstPeriod;
  }

  /** Index of a key, or -1 when the key is not one of this node's partitions. */
  indexOf(key: string): number {
    this.keyIndex ??= new Map(this.keys.map((k, i) => [k, i]));
    return this.keyIndex.get(key) ?? -1;
  }
}

/** A partition's window as the strings transforms and SQL receive. */
export function windowStrings(window: PartitionWindow | undefined): { start: string; end: string } | null {
  return window ? { start: formatInstant(window.start), end: formatInstant(window.end) } : null;
}
