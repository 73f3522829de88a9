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

/** Keys of a static set an error shows before it counts the rest. */
const SHOWN_KEYS = 5;

/** Keys as a list, the first few and a count when many: `a, b, c, d, e and 7 more`. */
function keyList(keys: readonly string[]): string {
  return keys.length > SHOWN_KEYS + 1 ? `${keys.slice(0, SHOWN_KEYS).join(', ')} and ${keys.length - SHOWN_KEYS} more` : keys.join(', ');
}

/** An instant as a spec writes it: `2024-01-01` at midnight, `2024-01-01T05` at another hour. */
function specDate(ms: number): string {
  const text = formatInstant(ms);
  if (text.endsWith('T00:00:00Z')) return text.slice(0, 10);
  return text.endsWith(':00:00Z') ? text.slice(0, 13) : text;
}

/** A node's partitions in words: `day partitions 2024-01-01 to 2024-01-04` (end exclusive, as written), `static keys eu, us`. */
export function describePartitions(partitions: ResolvedPartitions): string {
  return partitions.kind === 'time'
    ? `${partitions.grain} partitions ${specDate(partitions.start)} to ${specDate(partitions.end)}`
    : `static keys ${keyList(partitions.keys)}`;
}

/** Whether `value` has the shape of resolved partitions (a spec sent by hand may hold anything there), so that it can be put in words. */
export function isResolvedPartitions(value: unknown): value is ResolvedPartitions {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  if (p.kind === 'static') return Array.isArray(p.keys) && p.keys.every((key) => typeof key === 'string');
  const instant = (ms: unknown) => typeof ms === 'number' && !Number.isNaN(new Date(ms).getTime());
  return p.kind === 'time' && typeof p.grain === 'string' && instant(p.start) && instant(p.end);
}

/**
 * A change of a node's partitions in words: `day partitions 2024-01-01 to 2024-01-04 → 2024-01-01
 * to 2024-01-05`; between static sets, the keys added and dropped too (the lists may be shortened).
 */
export function describePartitionsChange(before: ResolvedPartitions, after: ResolvedPartitions): string {
  if (before.kind === 'time' && after.kind === 'time' && before.grain === after.grain) {
    return `${describePartitions(before)} → ${specDate(after.start)} to ${specDate(after.end)}`;
  }
  if (before.kind === 'static' && after.kind === 'static') {
    const had = new Set(before.keys);
    const has = new Set(after.keys);
    const adds = after.keys.filter((key) => !had.has(key));
    const drops = before.keys.filter((key) => !has.has(key));
    const what = [...(adds.length > 0 ? [`adds ${keyList(adds)}`] : []), ...(drops.length > 0 ? [`drops ${keyList(drops)}`] : [])];
    const difference = what.length > 0 ? what.join('; ') : 'the same keys in another order';
    return `${describePartitions(before)} → ${keyList(after.keys)}: ${difference}`;
  }
  return `${describePartitions(before)} → ${describePartitions(after)}`;
}
