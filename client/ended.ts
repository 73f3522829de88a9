/** How a closed backfill run ended, as the server tells it: a run the server ended (terminated, timed out) did not end itself. */
import type { BackfillState } from '../core/protocol.ts';

/** The state of a run that closed without a result of its own (its status not COMPLETED). */
export function closedState(status: string): 'cancelled' | 'terminated' | 'timed_out' | 'failed' {
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
