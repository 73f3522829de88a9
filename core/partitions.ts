/** The ordered partitions of one node: their keys, time windows and index lookups. */
import {
  addPeriods,
  floorTo,
  formatInstant,
  formatKey,
  parseKey,
  periodNumber,
  type Grain,
} from './calendar.ts';
import type { PartitionRange, ResolvedPartitions } from './spec.ts';

export type PartitionWindow = { start: number; end: number };

// Read once: the workflow sandbox reads a global (`Number`) through the vm context's interceptor (see core/mapping.ts).
const { isInteger } = Number;

export class NodePartitions {
  private readonly staticKeys: readonly string[];
  private readonly firstPeriod: number;
  private readonly firstStart: number;
  private readonly count: number;
  private keyIndex: Map<string, number> | undefined;

  private constructor(
    readonly grain: Grain | 'static',
    count: number,
    firstStart: number,
    staticKeys: readonly string[] = [],
  ) {
    this.count = count;
    this.staticKeys = staticKeys;
    this.firstStart = firstStart;
    this.firstPeriod = grain === 'static' ? 0 : periodNumber(firstStart, grain);
  }

  /**
   * The partitions of a node, narrowed to `range` when given. A time partition belongs to
   * the backfill when its period overlaps the range: recomputing days 3–10 of a month
   * recomputes that month's rollup too. Static keys ignore the range. Time keys are computed
   * on demand, so a node of 100,000 hours costs a few numbers, not 100,000 strings.
   */
  static of(partitions: ResolvedPartitions, range: PartitionRange = {}): NodePartitions {
    if (partitions.kind === 'static') return new NodePartitions('static', partitions.keys.length, 0, partitions.keys);
    const start = Math.max(partitions.start, range.from ?? -Infinity);
    const end = Math.min(partitions.end, range.to ?? Infinity);
    if (start >= end) return new NodePartitions(partitions.grain, 0, floorTo(start, partitions.grain));
    const first = floorTo(start, partitions.grain);
    const count = periodNumber(end - 1, partitions.grain) - periodNumber(first, partitions.grain) + 1;
    return new NodePartitions(partitions.grain, count, first);
  }

  get size(): number {
    return this.count;
  }

  key(index: number): string {
    if (!(isInteger(index) && index >= 0 && index < this.count)) {
      throw new RangeError(`partition index ${index} is outside 0..${this.count - 1}`);
    }
    return this.grain === 'static' ? this.staticKeys[index]! : formatKey(addPeriods(this.firstStart, this.grain, index), this.grain);
  }

  /**
   * The key of the period `index` periods after this node's first partition, one of its
   * partitions or not (time grains only): what a lag reaching back past the first names.
   */
  periodKey(index: number): string {
    if (this.grain === 'static') throw new TypeError('static partitions have no periods');
    return formatKey(addPeriods(this.firstStart, this.grain, index), this.grain);
  }

  /** Keys of the partitions [start, end). */
  keys(start = 0, end = this.count): string[] {
    const out: string[] = [];
    for (let i = Math.max(0, start); i < Math.min(end, this.count); i++) out.push(this.key(i));
    return out;
  }

  /** The UTC window [start, end) of a time partition; undefined for static keys. */
  window(index: number): PartitionWindow | undefined {
    if (this.grain === 'static') return undefined;
    const start = this.startOf(index);
    return { start, end: this.endOf(start) };
  }

  /** The start of a time partition's window (`window` without its object). */
  startOf(index: number): number {
    if (this.grain === 'static') throw new TypeError('static partitions have no time window');
    return addPeriods(this.firstStart, this.grain, index);
  }

  /** The end of the window that starts at `start` (a partition's `startOf`). */
  endOf(start: number): number {
    if (this.grain === 'static') throw new TypeError('static partitions have no time window');
    return addPeriods(start, this.grain, 1);
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
    if (this.grain === 'static') {
      this.keyIndex ??= new Map(this.staticKeys.map((k, i) => [k, i]));
      return this.keyIndex.get(key) ?? -1;
    }
    const ms = parseKey(key, this.grain);
    if (ms === undefined) return -1;
    const index = this.indexAt(ms);
    return index >= 0 && index < this.count ? index : -1;
  }
}

/** A partition's window as the strings transforms and SQL receive. */
export function windowStrings(window: PartitionWindow | undefined): { start: string; end: string } | null {
  return window ? { start: formatInstant(window.start), end: formatInstant(window.end) } : null;
}
