/**
 * A set of non-negative integers kept as sorted, disjoint, non-adjacent half-open ranges.
 * Partition indexes are stored this way so that the state a workflow carries across
 * continue-as-new stays small: a node with 100,000 done partitions is one range.
 *
 * In JSON (signals, continue-as-new, results) a set is a compact string, whichever of two
 * forms is shorter: `r` and base-36 (gap, length) pairs, or `b`, a base-36 offset and a
 * base64 bitmap. The bitmap bounds the worst case (every other partition failed) to about
 * one character per six partitions, so carried state has a size budget whatever happens.
 */
export type RangesJSON = string;

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function encodeBitmap(bits: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bits.length; i += 3) {
    const n = (bits[i]! << 16) | ((bits[i + 1] ?? 0) << 8) | (bits[i + 2] ?? 0);
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]! + BASE64[(n >> 6) & 63]! + BASE64[n & 63]!;
  }
  return out;
}

function decodeBitmap(text: string): Uint8Array {
  const bytes = new Uint8Array((text.length / 4) * 3);
  for (let i = 0, j = 0; i < text.length; i += 4, j += 3) {
    const n = (BASE64.indexOf(text[i]!) << 18) | (BASE64.indexOf(text[i + 1]!) << 12) | (BASE64.indexOf(text[i + 2]!) << 6) | BASE64.indexOf(text[i + 3]!);
    bytes[j] = (n >> 16) & 255;
    bytes[j + 1] = (n >> 8) & 255;
    bytes[j + 2] = n & 255;
  }
  return bytes;
}

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
    if (json.startsWith('r')) {
      let end = 0;
      for (const pair of json.slice(1).split(';')) {
        const [gap, length] = pair.split(',').map((n) => parseInt(n, 36)) as [number, number];
        set.addRange(end + gap, end + gap + length);
        end += gap + length;
      }
    } else if (json.startsWith('b')) {
      const colon = json.indexOf(':');
      const offset = parseInt(json.slice(1, colon), 36);
      const bits = decodeBitmap(json.slice(colon + 1));
      for (let i = 0; i < bits.length * 8; i++) if (bits[i >> 3]! & (1 << (i & 7))) set.add(offset + i);
    } else {
      throw new RangeError(`not a range set: '${json.slice(0, 20)}'`);
    }
    return set;
  }

  toJSON(): RangesJSON {
    if (this.count === 0) return '';
    const pairs: string[] = [];
    let end = 0;
    for (let i = 0; i < this.bounds.length; i += 2) {
      pairs.push(`${(this.bounds[i]! - end).toString(36)},${(this.bounds[i + 1]! - this.bounds[i]!).toString(36)}`);
      end = this.bounds[i + 1]!;
    }
    const ranges = `r${pairs.join(';')}`;
    const offset = this.bounds[0]!;
    const span = this.bounds[this.bounds.length - 1]! - offset;
    // A bitmap is about span/6 characters: only worth building when it beats the ranges.
    if (span / 6 + 8 >= ranges.length) return ranges;
    const bits = new Uint8Array(Math.ceil(span / 8));
    for (const [start, stop] of this.ranges()) for (let v = start; v < stop; v++) bits[(v - offset) >> 3]! |= 1 << ((v - offset) & 7);
    return `b${offset.toString(36)}:${encodeBitmap(bits)}`;
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
    if (this.bounds.length === 0) return this;
    // Only the ranges of `other` within this set's span can remove anything: a set of one
    // partition minus the done ranges of a year looks at one or two of them, not all.
    const last = this.bounds[this.bounds.length - 1]!;
    for (let r = other.firstEndingAfter(this.bounds[0]!); r * 2 < other.bounds.length && this.bounds.length > 0; r++) {
      const start = other.bounds[r * 2]!;
      if (start >= last) break;
      this.deleteRange(start, other.bounds[r * 2 + 1]!);
    }
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

/**
 * A range set that arrived in a message (a signal anyone with access to the namespace can send):
 * the set, or why it is not one of partitions 0 to `size` - 1.
 */
export function receivedRanges(json: unknown, size: number): RangeSet | string {
  if (json !== undefined && typeof json !== 'string') return 'is not a range set';
  let set: RangeSet;
  try {
    set = RangeSet.fromJSON(json);
  } catch {
    return 'is not a range set';
  }
  for (const [start, end] of set.ranges()) {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > size) return `names partitions outside the node's ${size}`;
  }
  return set;
}
