/**
 * Checksums that do not depend on the engine: SQLite and PostgreSQL return the same data in
 * different shapes (a bigint as a JavaScript number or as text, a boolean as 1 or true) and
 * sort text differently. Each value is brought to one canonical form, each row hashed, and
 * the row hashes combined by addition, so that neither row order nor engine changes the
 * result and a partition of any size is hashed in constant memory.
 */
import { createHash } from 'node:crypto';

export type ValueKind = 'number' | 'boolean' | 'text' | 'unknown';

const MODULUS = 1n << 256n;

/** A number's canonical text: integers exactly (whatever their size), others in JavaScript's shortest form. */
export function canonicalNumber(value: number | bigint | string): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^[+-]?\d+$/.test(text)) return BigInt(text).toString();
    if (/^[+-]?\d+\.0*$/.test(text)) return BigInt(text.slice(0, text.indexOf('.'))).toString();
    return canonicalNumber(Number(text));
  }
  if (Number.isInteger(value)) return BigInt(value).toString();
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}

/** The canonical form of one value, typed by what the engine said the column holds. */
export function canonicalValue(value: unknown, kind: ValueKind = 'unknown'): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'bigint') return `n:${canonicalNumber(value)}`;
  if (typeof value === 'boolean') return `n:${value ? 1 : 0}`;
  if (typeof value === 'string') {
    if (kind === 'number') return `n:${canonicalNumber(value)}`;
    if (kind === 'boolean') return `n:${value === 't' || value === 'true' ? 1 : 0}`;
    return `s:${value}`;
  }
  if (value instanceof Uint8Array) return `b:${Buffer.from(value).toString('hex')}`;
  if (value instanceof Date) return `s:${value.toISOString()}`;
  return `s:${JSON.stringify(value)}`;
}

/** Hashes rows (values in the order of `columns`) into one order-independent checksum. */
export class RowHasher {
  private sum = 0n;
  private count = 0;

  constructor(
    private readonly columns: readonly string[],
    private readonly kinds: readonly ValueKind[] = [],
  ) {}

  add(values: readonly unknown[]): void {
    const canonical = values.map((v, i) => canonicalValue(v, this.kinds[i]));
    const digest = createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
    this.sum = (this.sum + BigInt(`0x${digest}`)) % MODULUS;
    this.count++;
  }

  get rowCount(): number {
    return this.count;
  }

  /** The checksum of the rows added: their columns, count and the sum of their hashes. */
  checksum(): string {
    return createHash('sha256')
      .update(`${JSON.stringify(this.columns)}\n${this.count}\n${this.sum.toString(16)}`)
      .digest('hex');
  }
}

/** A version's schema hash: its column names, sorted. */
export function schemaHash(columns: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify([...columns].sort())).digest('hex').slice(0, 16);
}
