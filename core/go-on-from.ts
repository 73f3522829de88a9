/**
 * Which run of an ended backfill a new run (`resume`, `retry-failed`) goes on from. A run the
 * policy refused at admission ran nothing, but its end state is the carry it was given: the
 * limits it was refused for (`resume --rate 100` over a cap of 20), and, of a retry-failed, the
 * failures already handed over to be retried. Going on from it would be refused again, or find
 * nothing to retry. So the new run goes on from the latest run before it that was admitted.
 */

/** What the client knows of one run of a backfill's workflow (a description, a visibility listing). */
export type RunSummary = { runId: string; status: { name: string }; startTime: Date; memo?: Record<string, unknown> };

/** Whether a run ended refused at admission: the workflow writes why in its memo (`governance.refused`) before it fails. */
export function refusedAtAdmission(run: Pick<RunSummary, 'status' | 'memo'>): boolean {
  if (run.status.name !== 'FAILED') return false;
  const governance = run.memo?.governance;
  return typeof governance === 'object' && governance !== null && typeof (governance as { refused?: unknown }).refused === 'string';
}

/**
 * The run to go on from: `latest`, unless it was refused at admission; then the latest of `runs`
 * started before it that was not. With none (every earlier run refused, or none kept: the
 * namespace's retention), `latest`, and the policy judges what it holds again.
 */
export function goOnFrom<R extends RunSummary>(latest: R, runs: Iterable<R>): R {
  if (!refusedAtAdmission(latest)) return latest;
  let from: R | null = null;
  for (const run of runs) {
    if (run.runId === latest.runId || run.startTime.getTime() >= latest.startTime.getTime() || refusedAtAdmission(run)) continue;
    if (from === null || run.startTime.getTime() > from.startTime.getTime()) from = run;
  }
  return from ?? latest;
}
