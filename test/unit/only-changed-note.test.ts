import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { renderChanges } from '../../client/render.ts';
import type { ChangeSummary } from '../../client/only-changed.ts';

const summary = (extra: Partial<ChangeSummary>): ChangeSummary => ({
  warehouse: 'wh.db',
  codeVersion: 'backfill@0.1.0',
  compared: 'transform, sql, params, checks, code version, input versions',
  totalToRun: 31,
  totalSkipped: 0,
  nodes: [{ id: 'raw', partitions: 31, toRun: 31, skip: 0, reasons: { unpublished: 0, spec: 0, code: 31, inputs: 0, upstream: 0 } }],
  ...extra,
});

describe('plan --only-changed without a code version', () => {
  it('notes that partitions counted code changed may be the workers’ own version, naming it', () => {
    const text = stripVTControlCharacters(renderChanges(summary({ codeVersionDefaulted: true, codeVersionWas: [{ value: 'v1', partitions: 31 }] })));
    expect(text).toContain('note: 31 partitions count as code changed: made with v1 (31), while without --code-version the workers are taken to run backfill@0.1.0');
    expect(text).toContain('--code-version <version> (or BACKFILL_CODE_VERSION)');
  });

  it('says nothing when the version was given, or no partition counts as code changed', () => {
    expect(renderChanges(summary({ codeVersionWas: [{ value: 'v1', partitions: 31 }] }))).not.toContain('count as code changed');
    const unpublished = summary({ codeVersionDefaulted: true, nodes: [{ id: 'raw', partitions: 31, toRun: 31, skip: 0, reasons: { unpublished: 31, spec: 0, code: 0, inputs: 0, upstream: 0 } }] });
    expect(renderChanges(unpublished)).not.toContain('count as code changed');
  });
});
