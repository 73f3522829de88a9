/**
 * Checksums that do not depend on the engine: SQLite and PostgreSQL return the same data in
 * different shapes (a bigint as a JavaScript number or as text, a boolean as 1 or true) and
 * sort text differently. Each value is brought to one canonical form, each row hashed, and
 * the row hashes combined by addition, so that neither row order nor engine changes the
 * result and a partition of any size is hashed in constant memory.
 */
import crypto, { createHash } from 'node:crypto';

export type ValueKind = 'number' | 'boolean' | 'text' | 'unknown';

const WORD = 2 ** 32;

/** A SHA-256 digest as a 'binary' (latin1) string, one character per byte: one-shot where Node has it (20.12+). */
const sha256Binary: (data: string) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'binary') : (data) => createHash('sha256').update(data).digest('binary');
/** Rows between carry folds: a limb then holds at most 2^20 + 1 words below 2^32, exact in a double (2^53). */
const FOLD_EVERY = 2 ** 20;

/** A number's canonical text: integers exactly (whatever their size), others in JavaScript's shortest form. */
export function canonicalNumber(value: number | bigint | string): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') {
    const text = value.trim();
    // Up to 15 characters the digits are below 2^53, so Number parses them exactly.
    if (/^[+-]?\d+$/.test(text)) return text.length <= 15 ? String(Number(text)) : BigInt(text).toString();
    if (/^[+-]?\d+\.0*$/.test(text)) return BigInt(text.slice(0, text.indexOf('.'))).toString();
    return canonicalNumber(Number(text));
  }
  if (Number.isSafeInteger(value)) return String(value);
  if (Number.isInteger(value)) return BigInt(value).toString();
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}

/** Whether text reads as a number (NaN and the infinities as PostgreSQL writes them included). */
function numeric(text: string): boolean {
  const t = text.trim();
  return t === 'NaN' || (t !== '' && !Number.isNaN(Number(t)));
}

/** The canonical form of one value, typed by what the engine said the column holds. */
export function canonicalValue(value: unknown, kind: ValueKind = 'unknown'): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'bigint') return `n:${canonicalNumber(value)}`;
  if (typeof value === 'boolean') return `n:${value ? 1 : 0}`;
  if (typeof value === 'string') {
    // Text that is no number (SQL's text in a column typed for numbers) keeps its own form: as NaN it would hash like any other.
    if (kind === 'number') return numeric(value) ? `n:${canonicalNumber(value)}` : `s:${value}`;
    if (kind === 'boolean') return `n:${value === 't' || value === 'true' ? 1 : 0}`;
    return `s:${value}`;
  }
  if (value instanceof Uint8Array) return `b:${Buffer.from(value).toString('hex')}`;
  if (value instanceof Date) return `s:${value.toISOString()}`;
  return `s:${JSON.stringify(value)}`;
}

/**
 * Hashes rows (values in the order of `columns`) into one order-independent checksum.
 * The sum of the row hashes modulo 2^256 is kept in eight 32-bit limbs held in doubles, whose
 * carries are folded only every `foldEvery` rows; the BigInt is built once, in `checksum()`.
 */
export class RowHasher {
  private readonly limbs = new Float64Array(8);
  private count = 0;
  private unfolded = 0;

  constructor(
    private readonly columns: readonly string[],
    private readonly kinds: readonly ValueKind[] = [],
    private readonly foldEvery = FOLD_EVERY,
  ) {}

  add(values: readonly unknown[]): void {
    const canonical: (string | null)[] = new Array<string | null>(values.length);
    for (let i = 0; i < values.length; i++) canonical[i] = canonicalValue(values[i], this.kinds[i]);
    // Cheaper than a hex string or a Buffer.
    const digest = sha256Binary(JSON.stringify(canonical));
    const limbs = this.limbs;
    for (let i = 0, j = 0; i < 8; i++, j += 4) {
      limbs[i]! += ((digest.charCodeAt(j) << 24) | (digest.charCodeAt(j + 1) << 16) | (digest.charCodeAt(j + 2) << 8) | digest.charCodeAt(j + 3)) >>> 0;
    }
    this.count++;
    if (++this.unfolded >= this.foldEvery) this.fold();
  }

  get rowCount(): number {
    return this.count;
  }

  /** The checksum of the rows added: their columns, count and the sum of their hashes. */
  checksum(): string {
    this.fold();
    let sum = 0n;
    for (const limb of this.limbs) sum = (sum << 32n) | BigInt(limb);
    return createHash('sha256')
      .update(`${JSON.stringify(this.columns)}\n${this.count}\n${sum.toString(16)}`)
      .digest('hex');
  }

  /** Carries each limb's excess into the next more significant one; the top limb's carry is dropped (mod 2^256). */
  private fold(): void {
    let carry = 0;
    for (let i = 7; i >= 0; i--) {
      const total = this.limbs[i]! + carry;
      carry = Math.floor(total / WORD);
      this.limbs[i] = total - carry * WORD;
    }
    this.unfolded = 0;
  }
}

/** A version's schema hash: its column names, sorted. */
export function schemaHash(columns: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify([...columns].sort())).digest('hex').slice(0, 16);
}
