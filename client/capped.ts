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

/** What the nodes' own limits add up to: null when one of them has none (they can reach any backfill-wide limit together). */
export function ownLimitsTogether(state: ControlState, kind: 'rate' | 'concurrency'): number | null {
  let together = 0;
  for (const node of state.nodes) {
    const own = node[kind];
    if (own === null) return null;
    together += own;
  }
  return together;
}

/**
 * The line under set-rate's or set-concurrency's answer that names the nodes their own limit
 * keeps lower. It says whether the backfill-wide limit is out of reach of all of them together,
 * or only of each alone (events 4, daily 4 and weekly 4 can run 6 at once together).
 */
export function cappedLine(id: string, kind: 'rate' | 'concurrency', state: ControlState, capped: ReadonlyArray<{ node: string; limit: number }>): string {
  if (capped.length === 0) return '';
  const unit = kind === 'rate' ? '/s' : '';
  const list = capped.map((c) => `${c.node} ${c.limit}${unit}`).join(', ');
  const command = kind === 'rate' ? 'set-rate' : 'set-concurrency';
  const raise = `raise one with 'backfill ${command} ${shellWord(id)} <${kind === 'rate' ? 'per-second' : 'n'}> --node <node>'`;
  const backfill = state[kind];
  const together = ownLimitsTogether(state, kind);
  if (together !== null && (backfill === null || together < backfill)) {
    return `\n  capped lower by their own ${kind}, ${together}${unit} all together: ${list} (${raise})`;
  }
  const reach = backfill === null ? '' : `; together they can reach ${backfill}${unit}`;
  return `\n  each capped lower alone by its own ${kind}: ${list}${reach} (${raise})`;
}
