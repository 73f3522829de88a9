/** How a closed backfill run ended, as the server tells it: a run the server ended (terminated, timed out) did not end itself. */
import { BackfillError } from '../core/errors.ts';
import type { BackfillState } from '../core/protocol.ts';

/** How a run that closed without a result of its own ended. */
export type ClosedState = 'cancelled' | 'terminated' | 'timed_out' | 'failed';

/** The state of a run that closed without a result of its own (its status not COMPLETED). */
export function closedState(status: string): ClosedState {
  if (status === 'CANCELLED') return 'cancelled';
  if (status === 'TERMINATED') return 'terminated';
  if (status === 'TIMED_OUT') return 'timed_out';
  return 'failed';
}

const WITHOUT_CLEANUP: Partial<Record<BackfillState, string>> = {
  terminated: 'terminated (through Temporal: its cleanup did not run)',
  timed_out: 'timed out (its workflow timeout: its cleanup did not run)',
};

/** `terminated (through Temporal: its cleanup did not run)`: a state said with how it ended, where the server ended it. */
export const endedText = (state: BackfillState): string => WITHOUT_CLEANUP[state] ?? state;

/**
 * A staged run (or a canary's) that ended before its decision: how it ended, and whether
 * `backfill discard` dropped what it staged since. Its workflow's phase stays where the end
 * found it (`computing`, `awaiting`...), which no longer goes on.
 */
export type StagedEnd = { state: ClosedState; discarded: boolean };

/** Who took a staged run's (or a canary's) decision, and when (epoch ms), as its workflow keeps them. */
export type StagedDecided = { by: string; at: number };

/** Phases in which a staged run (or a canary's slice) has not had its decision yet. */
const UNDECIDED: ReadonlySet<string> = new Set(['computing', 'running', 'awaiting', 'publishing', 'approving', 'discarding']);

/** Whether a staged run (or a canary's slice) in `phase` has not had its decision yet. */
export const undecided = (phase: string): boolean => UNDECIDED.has(phase);

/** How a staged run (or a canary's) in `phase` ended before its decision (`closed`: its workflow's, null while it is open); null when it did not. */
export function endedUndecided(phase: string, closed: ClosedState | null): ClosedState | null {
  return undecided(phase) ? closed : null;
}

/**
 * The refusal of a control sent to a backfill that ended, naming how the backfill itself ended
 * (`discarded`, `completed with failures`), not its workflow's status on the server (`completed`
 * for both). `left`: what more to say (what frees a terminated one's datasets).
 */
export function notRunningError(backfillId: string, state: BackfillState, left?: string): BackfillError {
  return new BackfillError('not_running', `backfill '${backfillId}' is not running (it ended ${state.replaceAll('_', ' ')})${left !== undefined ? `; ${left}` : ''}`);
}
