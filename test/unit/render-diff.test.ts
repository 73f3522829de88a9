/** `backfill diff`: what its first and last lines say of a staged run, open or ended before its decision. */
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

describe('endedUndecided: a closed run whose phase had no decision yet', () => {
  it('ended while computing, awaiting or deciding (staged or canary): how it ended', () => {
    for (const phase of ['computing', 'awaiting', 'publishing', 'discarding', 'running', 'approving']) expect(endedUndecided(phase, 'cancelled')).toBe('cancelled');
  });

  it('open, or decided (published, discarded, an approved or failed canary): null', () => {
    expect(endedUndecided('computing', null)).toBeNull();
    for (const phase of ['published', 'discarded', 'approved', 'failed']) expect(endedUndecided(phase, 'cancelled')).toBeNull();
  });
});
