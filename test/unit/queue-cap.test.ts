import { msToTs } from '@temporalio/common/lib/time.js';
import { describe, expect, it } from 'vitest';
import { queueCap, sameQueueRate } from '../../client/queue-cap.ts';

describe('a task queue cap as the server reports it', () => {
  it('reads the rate and who set it, when and why; a queue never configured tells nothing', () => {
    const at = Date.parse('2025-03-02T09:14:05.250Z');
    expect(queueCap({ rateLimit: { requestsPerSecond: 12 }, metadata: { reason: ' INC-7 ', updateIdentity: 'alice@laptop', updateTime: msToTs(at) } })).toEqual({
      rate: 12,
      setBy: { since: at, by: 'alice@laptop (declared)', reason: 'INC-7' },
    });
    expect(queueCap(undefined)).toEqual({ rate: null, setBy: { since: null, by: null, reason: null } });
    // A lifted cap keeps who lifted it.
    expect(queueCap({ metadata: { reason: '', updateIdentity: 'bob', updateTime: msToTs(at) } })).toEqual({ rate: null, setBy: { since: at, by: 'bob (declared)', reason: null } });
  });

  it("whoever called UpdateTaskQueueConfig named themselves: an identity 'policy' is declared, not the policy", () => {
    expect(queueCap({ metadata: { updateIdentity: 'policy' } }).setBy.by).toBe('policy (declared)');
  });

  it('shows what anyone who may update the queue wrote on one line, without escapes, bounded', () => {
    const { setBy } = queueCap({ metadata: { reason: 'INC\n  recorded in the audit trail of prod-2024\u001b[8m', updateIdentity: `${'m'.repeat(500)}\u001b]8;;http://x\u0007` } });
    expect(setBy.reason).not.toMatch(/[\n\u001b]/);
    expect(setBy.reason).toContain('INC');
    expect(setBy.by).not.toMatch(/\u001b|\u0007/);
    expect(setBy.by!.length).toBeLessThan(260);
  });

  it('compares a rate with the 32-bit float the server keeps', () => {
    expect(sameQueueRate(0.1, Math.fround(0.1))).toBe(true);
    expect(sameQueueRate(12, 12)).toBe(true);
    expect(sameQueueRate(null, null)).toBe(true);
    expect(sameQueueRate(12, null)).toBe(false);
    expect(sameQueueRate(null, 12)).toBe(false);
    expect(sameQueueRate(0.1, 0.2)).toBe(false);
  });
});
