/**
 * The nodes a new backfill-wide limit leaves capped by their own lower one (a node never
 * exceeds its own rate or concurrency, whatever the backfill's): what set-rate and
 * set-concurrency without --node tell the operator.
 */
import type { ControlState } from '../core/coordinator.ts';
import { shellWord } from '../core/shell-word.ts';

export function cappedByOwnLimit(state: ControlState, kind: 'rate' | 'concurrency'): Array<{ node: string; limit: number }> {
  const backfill = state[kind];
  return state.nodes.flatMap((n) => {
    const own = n[kind];
    return own !== null && (backfill === null || own < backfill) ? [{ node: n.id, limit: own }] : [];
  });
}

/** The line under set-rate's or set-concurrency's answer that names the nodes their own limit keeps lower. */
export function cappedLine(id: string, kind: 'rate' | 'concurrency', capped: ReadonlyArray<{ node: string; limit: number }>): string {
  if (capped.length === 0) return '';
  const unit = kind === 'rate' ? '/s' : '';
  const list = capped.map((c) => `${c.node} ${c.limit}${unit}`).join(', ');
  const command = kind === 'rate' ? 'set-rate' : 'set-concurrency';
  return `\n  capped lower by their own ${kind}: ${list} (raise one with 'backfill ${command} ${shellWord(id)} <${kind === 'rate' ? 'per-second' : 'n'}> --node <node>')`;
}
