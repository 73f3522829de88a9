/**
 * A new run of an ended backfill goes on from its latest run, unless the policy refused that one
 * at admission: then from the latest run before it that was admitted.
 */
import { describe, expect, it } from 'vitest';
import type { EarlierRun } from '../../core/approval.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import { admissionRefusal, admittedBefore, refusedAtAdmission, type RunEnd } from '../../core/go-on-from.ts';
import { refusedRunToFollow } from '../../core/id-reuse.ts';
import { fakeBackfillClient } from './fake-backfill-client.ts';

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

  it("why a run was refused at admission is its memo's refusal; none for any other end", () => {
    expect(admissionRefusal(ended('FAILED', refusedMemo))).toBe(refusedMemo.governance.refused);
    expect(admissionRefusal(ended('FAILED', admittedMemo))).toBeNull();
    expect(admissionRefusal(ended('COMPLETED', refusedMemo))).toBeNull();
    expect(admissionRefusal(ended('FAILED', { governance: { refused: 5 } }))).toBeNull();
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

describe('resume of a backfill that completed', () => {
  /** A client of one backfill whose latest run completed with `state`; every other call fails. */
  function completedAs(state: string) {
    const handle = {
      describe: async () => ({ type: 'backfillWorkflow', status: { name: 'COMPLETED' }, runId: 'r1', taskQueue: 'q', startTime: new Date() }),
      result: async () => ({ state, progress: { state, nodes: [] } }),
    };
    return fakeBackfillClient({ client: { workflow: { getHandle: () => handle } } });
  }

  it('is refused: every partition is published, so a new run would run nothing (not even with a new spec)', async () => {
    await expect(completedAs('completed').resume('b1')).rejects.toMatchObject({
      code: 'not_running',
      message: "backfill 'b1' completed: nothing is left to resume (start it again with --rerun to recompute it)",
    });
    await expect(completedAs('completed').resume('b1', { spec: {} as ResolvedSpec })).rejects.toMatchObject({ message: expect.stringContaining('nothing is left to resume with the new spec') });
    // One that completed with failures goes on (its failures run again): past this check, on to the run it goes on from.
    await expect(completedAs('completed_with_failures').resume('b1')).rejects.not.toMatchObject({ code: 'not_running' });
  });
});

describe('a start that takes an id again without --rerun', () => {
  const latest = { runId: 'r2', ...ended('FAILED', refusedMemo) };

  it('follows the latest run when the policy refused every run of the id at admission (listed or not yet)', () => {
    expect(refusedRunToFollow(latest, [run('r1', 1, true), run('r2', 2)])).toBe('r2');
    expect(refusedRunToFollow(latest, [])).toBe('r2');
  });

  it('follows none when a run of the id was admitted (it ran: --rerun), or the latest was not refused', () => {
    expect(refusedRunToFollow(latest, [run('a1', 1), run('r2', 2, true)])).toBeNull();
    expect(refusedRunToFollow({ runId: 'a1', ...ended('FAILED', admittedMemo) }, [run('a1', 1)])).toBeNull();
    expect(refusedRunToFollow({ runId: 'r2', ...ended('RUNNING', refusedMemo) }, [])).toBeNull();
  });
});
