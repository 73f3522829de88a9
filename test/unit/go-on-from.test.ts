/**
 * A new run of an ended backfill goes on from its latest run, unless the policy refused that one
 * at admission: then from the latest run before it that was admitted.
 */
import { describe, expect, it } from 'vitest';
import type { EarlierRun } from '../../core/approval.ts';
import { admittedBefore, refusedAtAdmission, type RunEnd } from '../../core/go-on-from.ts';

const refusedMemo = { governance: { policy: { hash: 'sha256:aa' }, refused: "caps.backfill.rate: the backfill's rate 100/s is above the policy's cap of 20/s" } };
const admittedMemo = { governance: { policy: { hash: 'sha256:aa' }, planHash: 'sha256:bb' } };
const ended = (status: string, memo?: Record<string, unknown>): RunEnd => ({ status: { name: status }, ...(memo ? { memo } : {}) });
const run = (runId: string, minute: number, refused = false): EarlierRun => ({ runId, startedAt: Date.UTC(2026, 0, 1, 0, minute), ...(refused ? { refused } : {}) });

describe('the run a new run goes on from', () => {
  it('a run is refused at admission when it failed with why in its memo; a failure after admission, or any other end, is not', () => {
    expect(refusedAtAdmission(ended('FAILED', refusedMemo))).toBe(true);
    expect(refusedAtAdmission(ended('FAILED', admittedMemo))).toBe(false);
    expect(refusedAtAdmission(ended('CANCELED', refusedMemo))).toBe(false);
    expect(refusedAtAdmission(ended('FAILED'))).toBe(false);
    expect(refusedAtAdmission(ended('FAILED', { governance: { refused: 5 } }))).toBe(false);
  });

  it('after refused runs, the latest admitted run before them, whatever came after the refusals', () => {
    const admitted = run('a2', 3);
    const refused2 = run('r2', 5, true);
    const runs = [refused2, run('later', 6), run('r1', 4, true), run('a1', 1), admitted];
    expect(admittedBefore(refused2, runs)).toBe(admitted);
  });

  it('none when no admitted run before the refused latest is kept (it goes on from the latest, and its policy judges again)', () => {
    const refused = run('r2', 5, true);
    expect(admittedBefore(refused, [refused, run('r1', 4, true)])).toBeNull();
    expect(admittedBefore(refused, [])).toBeNull();
  });
});
