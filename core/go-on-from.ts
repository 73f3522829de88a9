/**
 * Which run of an ended backfill a new run (`resume`, `retry-failed`) goes on from. A run the
 * policy refused at admission ran nothing, but its end state is the carry it was given: the
 * limits it was refused for (`resume --rate 100` over a cap of 20), and, of a retry-failed, the
 * failures already handed over to be retried. Going on from it would be refused again, or find
 * nothing to retry. So the new run goes on from the latest run before it that was admitted.
 */

import type { EarlierRun } from './approval.ts';

/** How a run ended, as its description or a visibility listing gives it. */
export type RunEnd = { status: { name: string }; memo?: Record<string, unknown> };

/** Whether a run ended refused at admission: the workflow writes why in its memo (`governance.refused`) before it fails. */
export function refusedAtAdmission(run: RunEnd): boolean {
  return admissionRefusal(run) !== null;
}

/** Why the policy refused a run at admission (the rules it broke, one a line, from its memo), or null when it did not. */
export function admissionRefusal(run: RunEnd): string | null {
  if (run.status.name !== 'FAILED') return null;
  const governance = run.memo?.governance;
  if (typeof governance !== 'object' || governance === null) return null;
  const refused = (governance as { refused?: unknown }).refused;
  return typeof refused === 'string' ? refused : null;
}

/**
 * The run to go on from when the latest (`latest`) was refused at admission: the latest of the
 * workflow id's `runs` (client/workflow-runs.ts, each refused run marked) started before it that
 * was admitted. Null with none (every earlier run refused, or none kept: the namespace's
 * retention): the new run goes on from the latest, and the policy judges what it holds again.
 */
export function admittedBefore(latest: Pick<EarlierRun, 'runId' | 'startedAt'>, runs: Iterable<EarlierRun>): EarlierRun | null {
  let from: EarlierRun | null = null;
  for (const run of runs) {
    if (run.runId === latest.runId || run.startedAt >= latest.startedAt || run.refused === true) continue;
    if (from === null || run.startedAt > from.startedAt) from = run;
  }
  return from;
}
