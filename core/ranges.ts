/**
 * A set of non-negative integers kept as sorted, disjoint, non-adjacent half-open ranges.
 * Partition indexes are stored this way so that the state a workflow carries across
 * continue-as-new stays small: a node with 100,000 done partitions is one range.
 */
export type RangesJSON = number[]; // [start0, end0, start1, end1, ...]

export class RangeSet {
  /** Flat [start, end) pairs, sorted, disjoint, never touching. */
  private bounds: number[] = [];
  private count = 0;

  static of(...ranges: Array<[number, number]>): RangeSet {
    const set = new RangeSet();
    for (const [start, end] of ranges) set.addRange(start, end);
    return set;
  }

  static fromJSON(json: RangesJSON | undefined): RangeSet {
    const set = new RangeSet();
    if (!json) return set;
    for (let i = 0; i + 1 < json.length; i += 2) set.addRange(json[i]!, json[i + 1]!);
    return set;
  }

  toJSON(): RangesJSON {
    return [...this.bounds];
  }

  clone(): RangeSet {
    const copy = new RangeSet();
    copy.bounds = [...this.bounds];
    copy.count = this.count;
    return copy;
  }

  get size(): number {
    return this.count;
  }

  get isEmpty(): boolean {
    return this.count === 0;
  }

  /** Number of stored ranges (a measure of fragmentation). */
  get rangeCount(): number {
    return this.bounds.length / 2;
  }

  /** Index of the first range whose end is > value (ranges.length/2 when none). */
  private firstEndingAfter(value: number): number {
    let lo = 0;
    let hi = this.bounds.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.bounds[mid * 2 + 1]! > value) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  has(value: number): boolean {
    const r = this.firstEndingAfter(value);
    return r * 2 < this.bounds.length && this.bounds[r * 2]! <= value;
  }

  /** True when every integer of [start, end) is in the set (an empty range is always contained). */
  containsRange(start: number, end: number): boolean {
    if (start >= end) return true;
    const r = this.firstEndingAfter(start);
    return r * 2 < this.bounds.length && this.bounds[r * 2]! <= start && this.bounds[r * 2 + 1]! >= end;
  }

  /** True when some integer of [start, end) is in the set. */
  intersectsRange(start: number, end: number): boolean {
    if (start >= end) return false;
    const r = this.firstEndingAfter(start);
    return r * 2 < this.bounds.length && this.bounds[r * 2]! < end;
  }

  clear(): this {
    this.bounds = [];
    this.count = 0;
    return this;
  }

  add(value: number): this {
    return this.addRange(value, value + 1);
  }

  addRange(start: number, end: number): this {
    if (start >= end) return this;
    // Ranges that touch or overlap [start, end) merge with it.
    const first = this.firstEndingAfter(start - 1);
    let last = first;
    let mergedStart = start;
    let mergedEnd = end;
    let removed = 0;
    while (last * 2 < this.bounds.length && this.bounds[last * 2]! <= end) {
      mergedStart = Math.min(mergedStart, this.bounds[last * 2]!);
      mergedEnd = Math.max(mergedEnd, this.bounds[last * 2 + 1]!);
      removed += this.bounds[last * 2 + 1]! - this.bounds[last * 2]!;
      last++;
    }
    this.bounds.splice(first * 2, (last - first) * 2, mergedStart, mergedEnd);
    this.count += mergedEnd - mergedStart - removed;
    return this;
  }

  addAll(other: RangeSet): this {
    for (const [start, end] of other.ranges()) this.addRange(start, end);
    return this;
  }

  delete(value: number): this {
    return this.deleteRange(value, value + 1);
  }

  deleteRange(start: number, end: number): this {
    if (start >= end) return this;
    const first = this.firstEndingAfter(start);
    let last = first;
    const keep: number[] = [];
    let removed = 0;
    while (last * 2 < this.bounds.length && this.bounds[last * 2]! < end) {
      const s = this.bounds[last * 2]!;
      const e = this.bounds[last * 2 + 1]!;
      if (s < start) keep.push(s, start);
      if (e > end) keep.push(end, e);
      removed += Math.min(e, end) - Math.max(s, start);
      last++;
    }
    this.bounds.splice(first * 2, (last - first) * 2, ...keep);
    this.count -= removed;
    return this;
  }

  deleteAll(other: RangeSet): this {
    for (const [start, end] of other.ranges()) this.deleteRange(start, end);
    return this;
  }

  /** A new set with the members of this one that are not in `other`. */
  minus(other: RangeSet): RangeSet {
    return this.clone().deleteAll(other);
  }

  /** A new set with the members of this one that lie in [start, end). */
  slice(start: number, end: number): RangeSet {
    const out = new RangeSet();
    for (let r = this.firstEndingAfter(start); r * 2 < this.bounds.length; r++) {
      const s = this.bounds[r * 2]!;
      if (s >= end) break;
      out.addRange(Math.max(s, start), Math.min(this.bounds[r * 2 + 1]!, end));
    }
    return out;
  }

  /** Smallest member, or undefined when empty. */
  first(): number | undefined {
    return this.bounds[0];
  }

  /** Removes and returns up to `n` of the smallest members, in order. */
  take(n: number): number[] {
    const out: number[] = [];
    while (out.length < n && this.bounds.length > 0) {
      const start = this.bounds[0]!;
      const end = this.bounds[1]!;
      const upto = Math.min(end, start + (n - out.length));
      for (let v = start; v < upto; v++) out.push(v);
      this.deleteRange(start, upto);
    }
    return out;
  }

  *ranges(): IterableIterator<[number, number]> {
    for (let i = 0; i < this.bounds.length; i += 2) yield [this.bounds[i]!, this.bounds[i + 1]!];
  }

  *values(): IterableIterator<number> {
    for (const [start, end] of this.ranges()) for (let v = start; v < end; v++) yield v;
  }

  [Symbol.iterator](): IterableIterator<number> {
    return this.values();
  }
}
