/**
 * What `status` shows of a backfill that has ended. Its last progress keeps the holds it had when
 * it stopped (an operator's pause, a spent budget, a closed run window, an approval it waited
 * for), but none of them holds anything any more and `resume` of an ended run is refused: told as
 * live, they would send the operator to a command that cannot work. The audit's last action still
 * tells who paused it and when. The workflow's own state keeps them (a new run goes on from its carry).
 */
import { isActive, type Progress } from './protocol.ts';

export function withoutLiveHolds<P extends Progress>(progress: P): P {
  if (isActive(progress.state)) return progress;
  const governance = progress.governance && { ...progress.governance, holds: [], window: null };
  return { ...progress, paused: false, ...(governance ? { governance } : {}) };
}
