/** `backfill diff`: what its first and last lines say of a staged run, open, ended before its decision, or decided. */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { endedUndecided } from '../../client/ended.ts';
import { renderDiff } from '../../client/render-diff.ts';
import type { DiffSummary } from '../../core/diff.ts';

const counts = { partitions: 47, rowsBefore: 10, rowsAfter: 12, added: 2, removed: 0, changed: 1 };
const diff: DiffSummary = { ...counts, nodes: [{ ...counts, node: 'daily', key: null, columns: [] }] };
const lines = (text: string) => stripVTControlCharacters(text).split('\n');

describe('backfill diff of a staged run', () => {
  it('open: its phase, then publish or discard', () => {
    const text = lines(renderDiff('st-3', 'awaiting', diff));
    expect(text[0]).toBe('st-3: 47 staged partitions against what is published (awaiting)');
    expect(text.at(-1)).toBe("publish with 'backfill publish st-3', or drop with 'backfill discard st-3'");
  });

  it('cancelled while computing: not "computing", but cancelled before its decision, kept unpublished; discard or resume, no publish', () => {
    const text = lines(renderDiff('st-3', 'computing', diff, undefined, { state: 'cancelled', discarded: false }));
    expect(text[0]).toBe('st-3: 47 staged partitions against what is published (cancelled before its decision: what it staged is kept unpublished, and no reader sees it)');
    expect(text.at(-1)).toBe("drop them with 'backfill discard st-3', or go on with 'backfill resume st-3', then publish or discard");
  });

  it('terminated, then discarded: says both', () => {
    const text = lines(renderDiff('st-3', 'awaiting', { ...diff, partitions: 0, nodes: [] }, undefined, { state: 'terminated', discarded: true }));
    expect(text[0]).toContain('(terminated (through Temporal: its cleanup did not run) before its decision; what it staged was discarded since)');
  });
});

describe('backfill diff once nothing is staged', () => {
  const none: DiffSummary = { ...diff, partitions: 0, nodes: [] };
  const at = Date.UTC(2026, 11, 7, 13, 40, 1);

  it('published: not "nothing staged" alone, but when and by whom, and what shows the change (report) and undoes it (rollback)', () => {
    const text = lines(renderDiff('st-3', 'published', none, undefined, null, null, { by: 'alice@ops', at }));
    expect(text[0]).toBe('st-3: 0 staged partitions against what is published (published)');
    expect(text[1]).toBe(
      "  nothing is staged now: the staged versions were published at 2026-12-07 13:40:01 UTC by alice@ops, and readers see them. 'backfill report st-3' shows what the publish changed; 'backfill rollback st-3' undoes it",
    );
    expect(text).toHaveLength(2);
    // Without a decision on record (an older workflow), the publish is still said.
    expect(lines(renderDiff('st-3', 'published', none))[1]).toMatch(/^ {2}nothing is staged now: the staged versions were published, and readers see them\. 'backfill report st-3' shows/);
  });

  it("a canary's approved slice, and discarded versions, are said as such", () => {
    expect(lines(renderDiff('c-1', 'approved', none, undefined, null, null, { by: 'bob', at }))[1]).toBe(
      "  nothing is staged now: the canary's slice was approved at 2026-12-07 13:40:01 UTC by bob and published. 'backfill report c-1' shows what it changed",
    );
    expect(lines(renderDiff('st-3', 'discarded', none, undefined, null, null, { by: 'bob', at }))[1]).toBe(
      '  nothing is staged now: the staged versions were discarded at 2026-12-07 13:40:01 UTC by bob, and none of them was published',
    );
  });

  it('undecided with nothing staged yet: as before', () => {
    expect(lines(renderDiff('st-3', 'computing', none))[1]).toBe('  nothing staged: published or discarded already, or nothing computed yet');
  });
});

describe('backfill diff: the change of a column', () => {
  const row = (text: string, column: string) => lines(text).find((line) => line.includes(` ${column} `)) ?? '';
  const withColumn = (before: number | null, after: number) => {
    const stats = (sum: number) => ({ sum, min: 0, max: sum });
    const columns = [{ column: 'amount', before: before === null ? null : stats(before), after: stats(after) }];
    return { ...diff, nodes: [{ ...diff.nodes[0]!, columns }] };
  };

  it('is exact to the unit, however large the total: a sum from nothing is itself, one that moved by 1 says +1', () => {
    expect(row(renderDiff('st-3', 'awaiting', withColumn(null, 5_949_449)), 'amount')).toContain('+5,949,449');
    expect(row(renderDiff('st-3', 'awaiting', withColumn(33_892_455, 33_892_456)), 'amount')).toMatch(/\+1\b/);
  });

  it('keeps the digits of a fraction, and drops only the noise of binary fractions', () => {
    expect(row(renderDiff('st-3', 'awaiting', withColumn(0.1, 0.1 + 0.2 + 0.1)), 'amount')).toMatch(/\+0\.3(?!\d)/);
    expect(row(renderDiff('st-3', 'awaiting', withColumn(1000, 1000.0625)), 'amount')).toContain('+0.0625');
  });
});

describe('endedUndecided: a closed run whose phase had no decision yet', () => {
  it('ended while computing, awaiting or deciding (staged or canary): how it ended', () => {
    for (const phase of ['computing', 'awaiting', 'publishing', 'discarding', 'running', 'approving']) expect(endedUndecided(phase, 'cancelled')).toBe('cancelled');
  });

  it('open, or decided (published, discarded, an approved or failed canary): null', () => {
    expect(endedUndecided('computing', null)).toBeNull();
    for (const phase of ['published', 'discarded', 'approved', 'failed']) expect(endedUndecided(phase, 'cancelled')).toBeNull();
  });
});
