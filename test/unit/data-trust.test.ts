/**
 * Data trust below the workflows: spec hashes, the partition activity's checks with their
 * severities (a real SQLite warehouse, the built-in sql transform), and the pure parts of
 * rollback (which version a backfill replaced, whether a restore moves the pointer).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, type Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/run-partitions.ts';
import { missingRelationHint } from '../../activities/missing-relation.ts';
import { specHash, type HashedDefinition } from '../../activities/spec-hash.ts';
import { canonicalJson } from '../../core/canonical.ts';
import type { UndoneBy } from '../../core/rollback.ts';
import { BUILTIN_TRANSFORMS } from '../../activities/transforms.ts';
import { changesFromRows, type ChangeRow } from '../../activities/warehouse/changes.ts';
import { percentChange } from '../../activities/warehouse/checks.ts';
import { canonicalValue, RowHasher, schemaHash, type ValueKind } from '../../activities/warehouse/checksum.ts';
import { columnsFromSchemaHash, decideRestore } from '../../activities/warehouse/restore.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import type { LedgerRow, RestoreRequest } from '../../activities/warehouse/types.ts';
import { renderLineage } from '../../client/render.ts';
import type { PartitionNode, RunPartitionsInput, RunPartitionsResult } from '../../core/protocol.ts';

describe('specHash', () => {
  const node: HashedDefinition = { transform: 'sql', sql: 'SELECT 1 AS x', params: { a: 1, b: { c: [1, 2], d: 'x' } }, checks: [{ type: 'unique', columns: ['x'] }] };

  it('is 16 hex digits, the same however the keys are ordered and whether a default severity is written out', () => {
    const hash = specHash({ ...node, checks: [...node.checks] });
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(specHash({ checks: [{ columns: ['x'], type: 'unique', severity: 'error' }], params: { b: { d: 'x', c: [1, 2] }, a: 1 }, sql: node.sql, transform: 'sql' })).toBe(hash);
  });

  it('changes with the transform, the SQL, a parameter or a check', () => {
    const hash = specHash({ ...node, checks: [...node.checks] });
    const changed = [
      specHash({ ...node, checks: [...node.checks], transform: 'noop' }),
      specHash({ ...node, checks: [...node.checks], sql: 'SELECT 2 AS x' }),
      specHash({ ...node, checks: [...node.checks], params: { ...node.params, a: 2 } }),
      specHash({ ...node, checks: [{ type: 'unique', columns: ['x'], severity: 'warn' }] }),
      specHash({ ...node, checks: [] }),
    ];
    expect(new Set([hash, ...changed]).size).toBe(6);
  });

  it('canonical JSON sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: [{ z: 1, a: 2 }], a: undefined, c: 10n })).toBe('{"b":[{"a":2,"z":1}],"c":"10n"}');
  });
});

describe('the partition activity: check severities, drift and the spec hash', () => {
  let dir: string;
  let warehouse: SqliteWarehouse;
  beforeEach(() => {
    logged.length = 0;
    dir = mkdtempSync(join(tmpdir(), 'backfill-trust-'));
    warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
  });
  afterEach(async () => {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A SQL node that makes `rows` rows per partition. */
  const seriesNode = (rows: number, checks: PartitionNode['checks']): PartitionNode => ({
    id: 'series',
    transform: 'sql',
    sql: 'WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :rows) SELECT :partition AS day, n FROM s',
    params: { rows },
    checks,
    heartbeatTimeout: '30s',
  });
  /** What the activity logged, level and message. */
  const logged: string[] = [];
  const record = (level: string) => (message: string) => void logged.push(`${level} ${message}`);
  const logger: Logger = { log: (level, message) => record(level)(message), trace: record('TRACE'), debug: record('DEBUG'), info: record('INFO'), warn: record('WARN'), error: record('ERROR') };
  const run = (runKey: string, node: PartitionNode) => {
    const input: RunPartitionsInput = {
      backfillId: runKey,
      runKey,
      workflowId: `backfill/${runKey}/series`,
      node,
      partitions: [{ index: 0, key: '2024-01-01', window: { start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' }, inputs: [], throttled: 0 }],
      maxAttempts: 1,
    };
    const activities = createActivities({ warehouse, transforms: BUILTIN_TRANSFORMS, codeVersion: 'test' });
    return new MockActivityEnvironment({ attempt: 1 }, { logger }).run(activities.runPartitions, input) as Promise<RunPartitionsResult>;
  };
  const drift = (severity: 'error' | 'warn') => ({ type: 'drift', metric: 'row_count', maxChangePercent: 50, severity }) as const;

  it('a failing warn check publishes and records its warning, and the ledger has the node\'s spec hash', async () => {
    const node = seriesNode(3, [{ type: 'row_count', min: 5, severity: 'warn' }]);
    const result = await run('bf-1', node);
    expect(result.finished).toEqual([expect.objectContaining({ key: '2024-01-01', version: 1, rowCount: 3 })]);
    const [row] = await warehouse.ledger({ node: 'series' });
    expect(row).toMatchObject({ status: 'published', current: true, warnings: ['row_count: 3 rows, expected at least 5'], specHash: specHash(node) });
    expect(logged).toContain('WARN check warning on series 2024-01-01: row_count: 3 rows, expected at least 5');
  });

  it('a drift check fires when a parameter changes the row count beyond the threshold: error blocks, warn publishes', async () => {
    await run('bf-1', seriesNode(10, [drift('error')]));
    const failure = await run('bf-2', seriesNode(30, [drift('error')])).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'CheckFailed', nonRetryable: true });
    expect((failure as Error).message).toMatch(/drift: row_count went from 10 to 30 \(\+200%\), more than the 50% allowed/);
    expect(await warehouse.query('SELECT COUNT(*) AS n FROM series')).toEqual([{ n: 10 }]);

    const warned = await run('bf-3', seriesNode(30, [drift('warn')]));
    expect(warned.finished[0]).toMatchObject({ version: 3, rowCount: 30 });
    const ledger = await warehouse.ledger({ node: 'series' });
    expect(ledger.map((r) => [r.version, r.status, r.current, r.warnings])).toEqual([
      [3, 'published', true, ['drift: row_count went from 10 to 30 (+200%), more than the 50% allowed']],
      [2, 'failed_check', false, []],
      [1, 'published', false, []],
    ]);
    expect(new Set(ledger.map((r) => r.specHash)).size).toBe(3);
  });
});

describe('percentChange', () => {
  it('is relative to the old value, signed, and infinite from zero', () => {
    expect(percentChange(10, 15)).toBe(50);
    expect(percentChange(10, 5)).toBe(-50);
    expect(percentChange(-10, -5)).toBe(50);
    expect(percentChange(0, 0)).toBe(0);
    expect(percentChange(0, 1)).toBe(Infinity);
    expect(percentChange(0, -1)).toBe(-Infinity);
  });
});

describe('changesFromRows', () => {
  const row = (partition: string, version: number, previousVersion: number | null, current = version): ChangeRow => ({
    node: 'n',
    partition,
    version,
    previousVersion,
    checksum: `c${version}`,
    previousChecksum: previousVersion === null ? null : `c${previousVersion}`,
    currentVersion: current,
    currentBackfillId: 'bf',
  });

  it('goes back through the backfill\'s own versions to the one before them, but not past another backfill\'s', () => {
    // k: the backfill published 2 over 1, then 3 over 2. j: it published 2, another backfill 3, then it 4 over 3.
    const page = changesFromRows([row('j', 2, 1, 4), row('j', 4, 3), row('k', 2, 1, 3), row('k', 3, 2)], 10);
    expect(page.changes.map((c) => [c.partition, c.version, c.previousVersion, c.previousChecksum])).toEqual([
      ['j', 4, 3, 'c3'],
      ['k', 3, 1, 'c1'],
    ]);
    expect(page.next).toBeNull();
  });

  it('says where the next page starts when the page is full', () => {
    expect(changesFromRows([row('a', 1, null), row('b', 1, null)], 2).next).toEqual({ node: 'n', partition: 'b' });
  });
});

describe('decideRestore', () => {
  const request: RestoreRequest = { rollbackId: 'rb', backfillId: 'bf-2', node: 'n', partition: 'k', from: 2, to: 1 };
  // Version 3 was published on top of the backfill's version 2; versions 1 and none are not.
  const state = (found: number | null, foundBackfillId: string | null = null, undoneBy: UndoneBy | null = null) => ({ found, foundBackfillId, recorded: null, onTop: found === 3, undoneBy });

  it('moves the pointer only while the backfill\'s version is published, or when forced', () => {
    expect(decideRestore(request, state(2, 'bf-2'))).toMatchObject({ move: true, outcome: { status: 'restored', to: 1, forced: false } });
    expect(decideRestore(request, state(1, 'bf-1'))).toMatchObject({ move: false, outcome: { status: 'already_restored', to: 1 } });
    expect(decideRestore(request, state(3, 'bf-3'))).toMatchObject({ move: false, outcome: { status: 'changed_since', found: 3, foundBackfillId: 'bf-3', to: 3 } });
    expect(decideRestore({ ...request, force: true }, state(3, 'bf-3'))).toMatchObject({ move: true, outcome: { status: 'restored', to: 1, forced: true } });
    // Unpublished by a rollback of another backfill: nothing of bf-2 is there to undo, not even forced.
    const rb = { rollbackId: 'rb-0', backfillId: 'bf-0', forced: true };
    expect(decideRestore({ ...request, force: true }, state(null, null, rb))).toMatchObject({ move: false, outcome: { status: 'undone', undoneBy: rb } });
    expect(decideRestore({ ...request, force: true }, state(1, 'bf-1', rb))).toMatchObject({ move: false, outcome: { status: 'undone', to: 1 } });
    expect(decideRestore({ ...request, force: true }, state(4, 'bf-4', { ...rb, backfillId: 'bf-2' }))).toMatchObject({ move: false, outcome: { status: 'already_restored', to: 4 } });
    expect(decideRestore({ ...request, to: null }, state(2, 'bf-2'))).toMatchObject({ move: true, outcome: { status: 'removed', to: null } });
    expect(decideRestore({ ...request, to: null }, state(null))).toMatchObject({ move: false, outcome: { status: 'already_restored', to: null } });
  });

  it('replays what this rollback did before, whatever happened since', () => {
    const recorded = { fromVersion: 3, fromBackfillId: 'bf-3', toVersion: 1, forced: true };
    expect(decideRestore(request, { found: 5, foundBackfillId: 'bf-5', recorded, onTop: true, undoneBy: null })).toEqual({
      move: false,
      record: false,
      outcome: { node: 'n', partition: 'k', status: 'restored', found: 3, foundBackfillId: 'bf-3', to: 1, forced: true },
    });
  });

  it('records what it decided, also when nothing moves (the backfill counts as rolled back there)', () => {
    expect(decideRestore(request, state(1, 'bf-1'))).toMatchObject({ move: false, record: true });
    expect(decideRestore(request, state(3, 'bf-3'))).toMatchObject({ move: false, record: true });
    expect(decideRestore(request, state(2, 'bf-2'))).toMatchObject({ move: true, record: true });
  });
});

/** The checksum algorithm before the row hasher kept its sum in limbs: the reference every checksum must match. */
function referenceNumber(value: number | bigint | string): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^[+-]?\d+$/.test(text)) return BigInt(text).toString();
    if (/^[+-]?\d+\.0*$/.test(text)) return BigInt(text.slice(0, text.indexOf('.'))).toString();
    return referenceNumber(Number(text));
  }
  if (Number.isInteger(value)) return BigInt(value).toString();
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}

function referenceValue(value: unknown, kind: ValueKind = 'unknown'): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'bigint') return `n:${referenceNumber(value)}`;
  if (typeof value === 'boolean') return `n:${value ? 1 : 0}`;
  if (typeof value === 'string') {
    // Text that is no number keeps its own form in a column typed for numbers (SQLite's SQL may put it there).
    const t = value.trim();
    if (kind === 'number') return t === 'NaN' || (t !== '' && !Number.isNaN(Number(t))) ? `n:${referenceNumber(value)}` : `s:${value}`;
    if (kind === 'boolean') return `n:${value === 't' || value === 'true' ? 1 : 0}`;
    return `s:${value}`;
  }
  if (value instanceof Uint8Array) return `b:${Buffer.from(value).toString('hex')}`;
  if (value instanceof Date) return `s:${value.toISOString()}`;
  return `s:${JSON.stringify(value)}`;
}

function referenceChecksum(columns: readonly string[], kinds: readonly ValueKind[], rows: readonly (readonly unknown[])[]): string {
  let sum = 0n;
  for (const values of rows) {
    const digest = createHash('sha256').update(JSON.stringify(values.map((v, i) => referenceValue(v, kinds[i])))).digest('hex');
    sum = (sum + BigInt(`0x${digest}`)) % (1n << 256n);
  }
  return createHash('sha256').update(`${JSON.stringify(columns)}\n${rows.length}\n${sum.toString(16)}`).digest('hex');
}

/** A seeded generator of awkward values, so that a failure reproduces. */
function randomValues(seed: number): { value: () => unknown; kind: () => ValueKind; int: (n: number) => number } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const numbers = [0, -0, 1, -1, 12, 0.1, -2.5, 1e21, 1e-7, 2 ** 53, 2 ** 53 + 2, -(2 ** 60), 2 ** 70, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];
  const numericTexts = ['12', '12.000', '12.5', '-0', '+007', ' 42 ', '-000.00', '1e3', '0.1', '', 'abc', 'NaN', '-Infinity', '999999999999999', '1000000000000000', '-999999999999999', '+99999999999999', '123456789012345678901234567890', '9007199254740993', '0x1f', '12.', '.5'];
  const texts = ['t', 'true', 'f', 'false', 'TRUE', '1', 'plain', 'Zoë', '日本語', '😀 emoji', 'say "hi"', 'back\\slash', 'tab\tnew\nline\r', '\u0000\u0001\u001f\u007f', '\ud800 lone', 'end \udfff', '\u2028\u2029', '[1,2]', 'null'];
  const value = (): unknown => {
    switch (int(12)) {
      case 0: return pick(numbers);
      case 1: return (next() - 0.5) * 10 ** int(25);
      case 2: return int(2 ** 31) - 2 ** 30;
      case 3: return BigInt(int(2 ** 31)) ** BigInt(1 + int(4)) * (next() < 0.5 ? -1n : 1n);
      case 4: return next() < 0.5;
      case 5: return pick(numericTexts);
      case 6: return pick(texts);
      case 7: return `${pick(texts)}${String.fromCharCode(int(0x10000))}${int(1000)}`;
      case 8: return next() < 0.5 ? null : undefined;
      case 9: return Uint8Array.from({ length: int(6) }, () => int(256));
      case 10: return new Date(int(2 ** 31) * 1000);
      default: return pick([{ a: 1, b: 'x' }, [1, 'two', null], {}, { nested: { q: '"' } }]);
    }
  };
  const kind = (): ValueKind => pick(['number', 'boolean', 'text', 'unknown'] as const);
  return { value, kind, int };
}

function randomTable(seed: number, rowCount: number, width: number): { columns: string[]; kinds: ValueKind[]; rows: unknown[][] } {
  const r = randomValues(seed);
  const columns = Array.from({ length: width }, (_, i) => `c${i}`);
  const kinds = columns.map(() => r.kind());
  // Some rows are shorter or longer than the columns: the hasher hashes what it is given.
  const rows = Array.from({ length: rowCount }, () => Array.from({ length: Math.max(0, width + r.int(3) - 1) }, () => r.value()));
  return { columns, kinds, rows };
}

function hashed(columns: readonly string[], kinds: readonly ValueKind[], rows: readonly (readonly unknown[])[], foldEvery?: number): RowHasher {
  const hasher = new RowHasher(columns, kinds, foldEvery);
  for (const row of rows) hasher.add(row);
  return hasher;
}

describe('RowHasher', () => {
  it('gives the checksums it gave before its sum was kept in limbs (pinned)', () => {
    const checksum = (columns: string[], kinds: ValueKind[], rows: unknown[][]): string => hashed(columns, kinds, rows).checksum();
    expect(checksum(['a', 'b'], [], [])).toBe('2f2fcf2b8edd93950bf4a21d7b807b0bb46c991ef379e3bcee4f6c6fba615386');
    expect(checksum([], [], [[], []])).toBe('84472a58e234f9b89ab4642d230440b0c08eff5248a168d702d00a529ee728e9');
    expect(checksum(['id', 'name'], ['number', 'text'], [['12', 'Zoë "q"']])).toBe('b6b78432c52e171161504ac2a07e84e6dcb16360fab4be4cc9cb5e7d85fa0fa7');
    expect(checksum(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], ['number', 'boolean', 'text', 'unknown', 'unknown', 'unknown', 'number', 'unknown'], [
      ['12.000', 't', 'x\n\u0001', 1.5, -0, null, '-0012', new Uint8Array([0, 255])],
      [9007199254740993n, 'f', '', NaN, 2 ** 70, undefined, ' 3.25 ', new Date(Date.UTC(2024, 1, 29, 12))],
      [-7, true, '\ud800', { b: 1, a: [2] }, false, 'n', '1e3', 'plain'],
    ])).toBe('93bdd0b6e9b2f2b02fcef5c9b688bd13b1cbcb698565db70d167925dbfebbbc5');
    const many = Array.from({ length: 5000 }, (_, i) => [String(i), `row ${i}`]);
    expect(checksum(['i', 's'], ['number', 'text'], many)).toBe('9f62cf54fe7279c864454202b1c964171d4a47df4e53ba5e963ced3b73634578');
  });

  it('text that is no number, read from a column typed for numbers, hashes as itself: two such texts do not hash alike as NaN', () => {
    expect(canonicalValue('abc', 'number')).toBe('s:abc');
    expect(canonicalValue('', 'number')).toBe('s:');
    expect(canonicalValue('NaN', 'number')).toBe('n:NaN');
    expect(canonicalValue(' 12.50 ', 'number')).toBe('n:12.5');
    expect(hashed(['x'], ['number'], [['abc']]).checksum()).not.toBe(hashed(['x'], ['number'], [['xyz']]).checksum());
  });

  it('canonical values are what they were, for every kind of value', () => {
    const r = randomValues(7);
    for (let i = 0; i < 20_000; i++) {
      const value = r.value();
      const kind = r.kind();
      expect(canonicalValue(value, kind), `${String(value)} as ${kind}`).toBe(referenceValue(value, kind));
    }
  });

  it('matches the old algorithm on 0, 1 and 3,000 random rows of awkward values, and reading the checksum changes nothing', () => {
    for (const [seed, count] of [[1, 0], [2, 1], [3, 3000]] as const) {
      const { columns, kinds, rows } = randomTable(seed, count, 8);
      const hasher = hashed(columns, kinds, rows);
      expect(hasher.rowCount).toBe(count);
      expect(hasher.checksum()).toBe(referenceChecksum(columns, kinds, rows));
      expect(hasher.checksum()).toBe(referenceChecksum(columns, kinds, rows));
    }
    const { columns, kinds, rows } = randomTable(4, 200, 5);
    const hasher = hashed(columns, kinds, rows.slice(0, 120));
    expect(hasher.checksum()).toBe(referenceChecksum(columns, kinds, rows.slice(0, 120)));
    for (const row of rows.slice(120)) hasher.add(row);
    expect(hasher.checksum()).toBe(referenceChecksum(columns, kinds, rows));
  });

  it('matches the old algorithm on 100,000 rows, whose limbs carry many times', () => {
    const { columns, kinds, rows } = randomTable(5, 100_000, 3);
    expect(hashed(columns, kinds, rows).checksum()).toBe(referenceChecksum(columns, kinds, rows));
  });

  it('matches the old algorithm whenever it folds the carries: every row, every few rows, across a checksum read', () => {
    const { columns, kinds, rows } = randomTable(6, 5000, 4);
    const expected = referenceChecksum(columns, kinds, rows);
    for (const foldEvery of [1, 2, 3, 7, 1000, 4999, 5000, 5001]) expect(hashed(columns, kinds, rows, foldEvery).checksum(), `fold every ${foldEvery}`).toBe(expected);
    const hasher = hashed(columns, kinds, rows.slice(0, 2500), 1000);
    hasher.checksum();
    for (const row of rows.slice(2500)) hasher.add(row);
    expect(hasher.checksum()).toBe(expected);
  });
});

describe('columnsFromSchemaHash', () => {
  it('adds to the columns with values the all-NULL ones that make up the schema hash', () => {
    expect(columnsFromSchemaHash(schemaHash(['a', 'c']), ['a', 'b', 'c', 'd'], new Set(['a']))).toEqual(['a', 'c']);
    expect(columnsFromSchemaHash(schemaHash(['a']), ['a', 'b'], new Set(['a']))).toEqual(['a']);
    expect(columnsFromSchemaHash(schemaHash([]), [], new Set())).toEqual([]);
  });

  it('gives up when no set fits, or when too many columns are all NULL to try them all', () => {
    expect(columnsFromSchemaHash(schemaHash(['x']), ['a', 'b'], new Set(['a']))).toBeUndefined();
    const wide = Array.from({ length: 17 }, (_, i) => `c${i}`);
    expect(columnsFromSchemaHash(schemaHash(['c0']), wide, new Set())).toBeUndefined();
  });
});

describe('lineage output', () => {
  it('shows the spec hash of the published version, every version\'s duration and reported cost, and its check warnings', () => {
    const row = (version: number, warnings: string[], current: boolean, cost: number | null = null): LedgerRow => ({
      node: 'daily',
      partition: 'k',
      version,
      status: 'published',
      backfillId: `bf-${version}`,
      runKey: 'r',
      workflowId: 'w',
      rowCount: 3,
      checksum: 'c'.repeat(64),
      schemaHash: 's',
      transform: 'sql',
      params: { factor: version },
      codeVersion: 'code',
      inputs: [],
      attempt: 1,
      executions: 1,
      startedAt: '2024-01-01T00:00:00.000Z',
      finishedAt: '2024-01-01T00:00:01.000Z',
      durationMs: 1000,
      previousVersion: version > 1 ? version - 1 : null,
      error: null,
      warnings,
      specHash: `hash-${version}`,
      cost,
      current,
    });
    const text = stripVTControlCharacters(renderLineage('daily', 'k', [row(2, ['drift: row_count went from 3 to 9 (+200%), more than the 50% allowed'], true, 1234567.5), row(1, [], false)]));
    expect(text).toMatch(/│ took\s+│ cost\s+│/);
    expect(text).toMatch(/│ 1.0s\s+│ 1,234,567\.5\s+│/);
    expect(text).toMatch(/│ 1.0s\s+│ –\s+│/);
    expect(text).toContain('parameters: {"factor":2} · spec hash hash-2');
    expect(text).toContain('check warnings:\n  v2: drift: row_count went from 3 to 9 (+200%), more than the 50% allowed');
    // A staged backfill's versions: staged (not current), and once published, published from staging.
    const staged = stripVTControlCharacters(renderLineage('daily', 'k', [{ ...row(3, [], false), status: 'staged', staged: true }, { ...row(2, [], true), staged: true }, row(1, [], false)]));
    expect(staged).toMatch(/│ 3\s+│ staged\s+│ bf-3/);
    expect(staged).toMatch(/│ 2 \(current\)\s+│ published \(staged\)\s+│ bf-2/);
    expect(staged).toMatch(/│ 1\s+│ published\s+│ bf-1/);
    // Each version's own spec hash, and why a version failed its checks.
    expect(text).toMatch(/│ sql\s+│ hash-2\s+│ code/);
    expect(text).toMatch(/│ sql\s+│ hash-1\s+│ code/);
    const failed = stripVTControlCharacters(renderLineage('daily', 'k', [{ ...row(2, [], false), status: 'failed_check', error: 'total not negative: 1 violating rows' }, row(1, [], true)]));
    expect(failed).toContain('failed checks:\n  v2: total not negative: 1 violating rows');
  });

  it('shows each input with its partitions and versions, and an input that read nothing as (0)', () => {
    const row = (inputs: LedgerRow['inputs']): LedgerRow => ({
      node: 'vs_yesterday', partition: '2024-01-05', version: 1, status: 'published', backfillId: 'bf', runKey: 'r', workflowId: 'w', rowCount: 1,
      checksum: 'c'.repeat(64), schemaHash: 's', transform: 'sql', params: {}, codeVersion: 'code', inputs, attempt: 1, executions: 1,
      startedAt: '2024-01-01T00:00:00.000Z', finishedAt: '2024-01-01T00:00:01.000Z', durationMs: 1000, previousVersion: null, error: null,
      warnings: [], specHash: null, cost: null, current: true,
    });
    const text = stripVTControlCharacters(
      renderLineage('vs_yesterday', '2024-01-05', [
        row([
          { node: 'days', from: '2024-01-04', to: '2024-01-04', partitions: 0, versions: {}, digest: 'd0' },
          { node: 'weeks', from: '2024-01-01', to: '2024-01-02', partitions: 2, versions: { '2024-01-01': 1, '2024-01-02': 2 }, digest: 'd1' },
        ]),
      ]),
    );
    expect(text).toContain('days 2024-01-04 (0)');
    expect(text).toContain('weeks 2024-01-01..2024-01-02 (2, v1 v2)');
  });
});

describe('the partition activity: SQL that reads a table that is not there', () => {
  let dir: string;
  let warehouse: SqliteWarehouse;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-missing-'));
    warehouse = new SqliteWarehouse(join(dir, 'warehouse.db'));
  });
  afterEach(async () => {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails with SqlError naming the table, the datasets the node depends on, and the fix', async () => {
    const node: PartitionNode = { id: 'clean', transform: 'sql', sql: 'SELECT id FROM readings_rawx', params: {}, checks: [], heartbeatTimeout: '30s' };
    const input: RunPartitionsInput = {
      backfillId: 'bf',
      runKey: 'bf',
      workflowId: 'backfill/bf/clean',
      node,
      partitions: [{ index: 0, key: '2024-01-01', window: { start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' }, inputs: [{ node: 'readings_raw', from: '2024-01-01', to: '2024-01-01' }], throttled: 0 }],
      maxAttempts: 1,
    };
    const activities = createActivities({ warehouse, transforms: BUILTIN_TRANSFORMS, codeVersion: 'test' });
    const quiet = () => undefined;
    const logger: Logger = { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };
    const failure = await new MockActivityEnvironment({ attempt: 1 }, { logger }).run(activities.runPartitions, input).catch((e: unknown) => e);
    expect(failure).toMatchObject({ type: 'SqlError', nonRetryable: true });
    expect((failure as Error).message).toContain(
      "no such table: readings_rawx in SQL: SELECT id FROM readings_rawx: 'readings_rawx' is neither a dataset this node depends on (readings_raw) nor a table or view in the warehouse; correct the name, or add the node that produces it to dependsOn",
    );
  });

  it("words PostgreSQL's and DuckDB's errors the same way, and leaves other errors as they are", () => {
    expect(missingRelationHint('relation "orders_rawx" does not exist in SQL: SELECT 1', [])).toBe(
      "relation \"orders_rawx\" does not exist in SQL: SELECT 1: 'orders_rawx' is neither a dataset this node depends on (it depends on none) nor a table or view in the warehouse; correct the name, or add the node that produces it to dependsOn",
    );
    expect(missingRelationHint('Catalog Error: Table with name orders_rawx does not exist! in SQL: SELECT 1', ['a', 'a'])).toContain("'orders_rawx' is neither a dataset this node depends on (a) nor");
    expect(missingRelationHint('no such column: amount in SQL: SELECT amount FROM a', ['a'])).toBe('no such column: amount in SQL: SELECT amount FROM a');
  });
});
