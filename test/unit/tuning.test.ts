import { describe, expect, it } from 'vitest';
import { DEFAULT_TUNING } from '../../core/protocol.ts';
import { nodeTuningProblem, tuningProblem } from '../../core/tuning.ts';

describe('tuningProblem', () => {
  it('takes no tuning, the defaults, and what the tests and benchmarks send', () => {
    expect(tuningProblem(undefined)).toBeNull();
    expect(tuningProblem({})).toBeNull();
    expect(tuningProblem(DEFAULT_TUNING)).toBeNull();
    expect(tuningProblem({ reportIntervalMs: 100, historyLimit: 60, probeIntervalMs: 1000, maxNodeRestarts: 0, drainMs: 100, maxDeferrals: 3, deferralBackoffMs: 300 })).toBeNull();
  });

  it('names the field of anything the workflows cannot run with', () => {
    expect(tuningProblem({ reportIntervalMs: 'soon' })).toBe('tuning.reportIntervalMs must be number');
    expect(tuningProblem({ historyLimit: 0 })).toMatch(/^tuning\.historyLimit .*20/);
    expect(tuningProblem({ historyLimit: Number.NaN })).toMatch(/^tuning\.historyLimit/);
    expect(tuningProblem({ probeIntervalMs: 0 })).toMatch(/^tuning\.probeIntervalMs/);
    expect(tuningProblem({ maxNodeRestarts: -5 })).toMatch(/^tuning\.maxNodeRestarts/);
    expect(tuningProblem({ drainMs: 1.5 })).toMatch(/^tuning\.drainMs/);
    expect(tuningProblem({ speed: 'max' })).toBe("tuning has unknown field(s) 'speed'");
    expect(tuningProblem('fast')).toMatch(/^tuning must be object/);
    expect(tuningProblem(null)).toMatch(/^tuning must be object/);
  });
});

describe('nodeTuningProblem', () => {
  it('takes what a backfill sends its node workflows: the start\'s tuning over the defaults', () => {
    expect(nodeTuningProblem(DEFAULT_TUNING)).toBeNull();
    expect(nodeTuningProblem({ ...DEFAULT_TUNING, reportIntervalMs: 100, historyLimit: 60, maxDeferrals: 3 })).toBeNull();
    // From a release before drainMs existed: the node has its own default.
    const { drainMs: _drain, ...older } = DEFAULT_TUNING;
    expect(nodeTuningProblem(older)).toBeNull();
    // From a backfill started before its tuning was checked, with a key of another release: the node reads only its own.
    expect(nodeTuningProblem({ ...DEFAULT_TUNING, batchSize: 50 })).toBeNull();
  });

  it("names the field of a node workflow's tuning made by hand: out of bounds, or missing what the node reads without a default", () => {
    expect(nodeTuningProblem({ ...DEFAULT_TUNING, reportIntervalMs: 'soon' })).toBe('tuning.reportIntervalMs must be number');
    expect(nodeTuningProblem({ ...DEFAULT_TUNING, historyLimit: 0 })).toMatch(/^tuning\.historyLimit .*20/);
    expect(nodeTuningProblem({ reportIntervalMs: 100, historyLimit: 60 })).toBe('tuning.probeIntervalMs is required');
    expect(nodeTuningProblem(undefined)).toBe('tuning is required');
    expect(nodeTuningProblem('fast')).toMatch(/^tuning must be object/);
    expect(nodeTuningProblem({})).toBe('tuning.reportIntervalMs is required');
  });
});
