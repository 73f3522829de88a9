/**
 * What `status` shows of a backfill that has ended. Its last progress keeps the holds it had when
 * it stopped (an operator's pause, a spent budget, a closed run window, an approval it waited
 * for), but none of them holds anything any more and `resume` of an ended run is refused: told as
 * live, they would send the operator to a command that cannot work. The audit's last action still
 * tells who paused it and when. The workflow's own state keeps them (a new run goes on from its carry).
 */
import { VIEW_RECENT_ACTIONS, type AuditEntry } from './audit.ts';
import type { GovernanceView } from './governance.ts';
import { isActive, type Progress } from './protocol.ts';

export function withoutLiveHolds<P extends Progress>(progress: P): P {
  if (isActive(progress.state)) return progress;
  const governance = progress.governance && { ...progress.governance, holds: [], window: null };
  return { ...progress, paused: false, ...(governance ? { governance } : {}) };
}

/**
 * A staged backfill (or a canary) that ended before its decision, once a discard of its own ran
 * after (`backfill discard` of an ended run: a workflow apart, whose history keeps its audit
 * entry). `entries`: that workflow's entries since the run ended, oldest first; `dropped`: one of
 * them completed. Its entries follow the run's last action, numbered on, and a completed discard
 * leaves what it staged discarded, by whoever applied it.
 */
export function withDiscardAfterEnd(progress: Progress, entries: readonly AuditEntry[], dropped: boolean): Progress {
  if (entries.length === 0) return progress;
  const governance = progress.governance && withLaterActions(progress.governance, entries);
  const applied = [...entries].reverse().find((e) => e.outcome === 'applied');
  const decided = dropped && applied ? decidedBy(progress, applied) : {};
  return { ...progress, ...(governance ? { governance } : {}), ...decided };
}

/** The audit of a governance view with `entries` recorded after it, numbered on from its count. */
function withLaterActions(g: GovernanceView, entries: readonly AuditEntry[]): GovernanceView {
  const later = entries.map((e, i) => ({ ...e, seq: g.actions + i + 1 }));
  return { ...g, lastAction: later[later.length - 1]!, recentActions: [...g.recentActions, ...later].slice(-VIEW_RECENT_ACTIONS), actions: g.actions + later.length };
}

function decidedBy(progress: Progress, discard: AuditEntry): Pick<Progress, 'staged' | 'canary'> {
  if (progress.staged) return { staged: { phase: 'discarded', by: discard.identity, at: discard.at } };
  if (progress.canary) return { canary: { ...progress.canary, phase: 'discarded', decision: { action: 'discard', by: discard.identity, reason: discard.reason, at: discard.at, auto: false } } };
  return {};
}
