import { describe, expect, it } from 'vitest';
import { DEFAULT_TUNING } from '../../core/protocol.ts';
import { tuningProblem } from '../../core/tuning.ts';

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
