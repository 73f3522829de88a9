/**
 * A new run of an ended backfill goes on from its latest run, unless the policy refused that one
 * at admission: then from the latest run before it that was admitted.
 */
import { describe, expect, it } from 'vitest';
import { goOnFrom, refusedAtAdmission, type RunSummary } from '../../core/go-on-from.ts';

const refusedMemo = { governance: { policy: { hash: 'sha256:aa' }, refused: "caps.backfill.rate: the backfill's rate 100/s is above the policy's cap of 20/s" } };
const admittedMemo = { governance: { policy: { hash: 'sha256:aa' }, planHash: 'sha256:bb' } };
const run = (runId: string, minute: number, status: string, memo?: Record<string, unknown>): RunSummary => ({
  runId,
  status: { name: status },
  startTime: new Date(Date.UTC(2026, 0, 1, 0, minute)),
  ...(memo ? { memo } : {}),
});

describe('the run a new run goes on from', () => {
  it('a run is refused at admission when it failed with why in its memo; a failure after admission, or any other end, is not', () => {
    expect(refusedAtAdmission(run('r', 0, 'FAILED', refusedMemo))).toBe(true);
    expect(refusedAtAdmission(run('a', 0, 'FAILED', admittedMemo))).toBe(false);
    expect(refusedAtAdmission(run('c', 0, 'CANCELED', refusedMemo))).toBe(false);
    expect(refusedAtAdmission(run('n', 0, 'FAILED'))).toBe(false);
    expect(refusedAtAdmission(run('x', 0, 'FAILED', { governance: { refused: 5 } }))).toBe(false);
  });

  it('the latest run, when it was admitted', () => {
    const latest = run('b', 2, 'CANCELED', admittedMemo);
    expect(goOnFrom(latest, [run('a', 1, 'FAILED', refusedMemo), latest])).toBe(latest);
  });

  it('after refused runs, the latest admitted run before them, whatever came after the refusals', () => {
    const admitted = run('a2', 3, 'COMPLETED', admittedMemo);
    const refused1 = run('r1', 4, 'FAILED', refusedMemo);
    const refused2 = run('r2', 5, 'FAILED', refusedMemo);
    const runs = [refused2, run('later', 6, 'COMPLETED', admittedMemo), refused1, run('a1', 1, 'CANCELED', admittedMemo), admitted];
    expect(goOnFrom(refused2, runs)).toBe(admitted);
  });

  it('the refused latest run itself when no admitted run before it is kept (its policy judges again)', () => {
    const refused = run('r2', 5, 'FAILED', refusedMemo);
    expect(goOnFrom(refused, [refused, run('r1', 4, 'FAILED', refusedMemo)])).toBe(refused);
    expect(goOnFrom(refused, [])).toBe(refused);
  });
});
