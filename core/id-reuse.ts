/**
 * A start without --rerun is refused for an id that ran before (WorkflowIdReusePolicy.REJECT_DUPLICATE).
 * A run the policy refused at admission ran nothing (its memo says why: core/go-on-from.ts), so an
 * id whose every run was refused is as good as unused: a start that complies may take it.
 */
import type { EarlierRun } from './approval.ts';
import { refusedAtAdmission, type RunEnd } from './go-on-from.ts';

/**
 * The run a start of a used id follows when every run of it (`latest`, described, and the listed
 * `runs`) was refused at admission: the latest. Null when one of them was admitted (it ran, or
 * runs: starting it again is a deliberate --rerun).
 */
export function refusedRunToFollow(latest: RunEnd & { runId: string }, runs: readonly EarlierRun[]): string | null {
  if (!refusedAtAdmission(latest)) return null;
  return runs.every((r) => r.runId === latest.runId || r.refused === true) ? latest.runId : null;
}
