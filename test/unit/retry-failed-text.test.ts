/** What `backfill retry-failed` prints: how many partitions it sent back, in the running backfill or in a new run. */
import { describe, expect, it } from 'vitest';
import { limitsLine } from '../../client/commands/resume.ts';
import { renderRetried } from '../../client/commands/retry-failed.ts';

describe('retry-failed output', () => {
  it('counts one failed partition in the singular, several in the plural', () => {
    expect(renderRetried('s2', { retried: 1, changed: [], resumed: { uiUrl: 'http://ui/s2' } })).toBe('s2 resumed in a new run to retry 1 failed partition\n  web UI: http://ui/s2');
    expect(renderRetried('s2', { retried: 28, changed: [], resumed: null })).toBe('s2: retrying 28 failed partitions');
    expect(renderRetried('s2', { retried: 1, changed: [], resumed: null })).toBe('s2: retrying 1 failed partition');
  });

  it("in a new run, counts the partitions blocked behind the failures too, in the audit entry's terms", () => {
    expect(renderRetried('s2', { retried: 28, blocked: 56, changed: [], resumed: { uiUrl: 'http://ui/s2' } })).toBe('s2 resumed in a new run to retry 28 failed partitions and the 56 blocked behind them\n  web UI: http://ui/s2');
    expect(renderRetried('s2', { retried: 1, blocked: 2, changed: [], resumed: { uiUrl: 'u' } })).toMatch(/^s2 resumed in a new run to retry 1 failed partition and the 2 blocked behind it\n/);
    expect(renderRetried('s2', { retried: 3, blocked: 0, changed: [], resumed: { uiUrl: 'u' } })).toMatch(/^s2 resumed in a new run to retry 3 failed partitions\n/);
  });

  it('names the limits a new run was given (--rate, --concurrency), and none it was not', () => {
    expect(renderRetried('s2', { retried: 3, changed: [], resumed: { uiUrl: 'u' } }, { rate: 5, concurrency: 2 })).toBe("s2 resumed in a new run to retry 3 failed partitions\n  new run's limits: rate 5/s, concurrency 2\n  web UI: u");
    expect(limitsLine({ rate: null })).toBe("\n  new run's limits: rate unlimited");
    expect(limitsLine({ concurrency: null })).toBe("\n  new run's limits: concurrency unlimited");
    expect(limitsLine({})).toBe('');
  });
});
