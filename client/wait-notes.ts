/**
 * What `wait` says while it blocks: a line when the backfill becomes held (a pause, a spent
 * budget, an approval, a closed run window, a decision it waits for), with why and the command
 * that lets it go on, and a line when it goes on again; nothing on a look that finds the same holds.
 */
import { BackfillError } from '../core/errors.ts';
import { isActive, type Progress } from '../core/protocol.ts';
import { shellWord } from '../core/shell-word.ts';
import type { BackfillClient } from './backfill-client.ts';
import { withBackfillId } from './render.ts';
import { decisionAwaited } from './wait-timeout.ts';

type Held = { kind: string; reason: string };
/** What `wait` last said: the kinds of hold it named ('' while nothing held the backfill). */
export type WaitNote = { held: string; line: string | null };

/** What waits on an operator's decision of what the backfill computed (as `wait --timeout` says it). */
function decisionHold(id: string, state: Progress['state']): Held | null {
  const reason = decisionAwaited(id, state);
  return reason === null ? null : { kind: state, reason };
}

/** Why nothing starts now, one entry per hold; empty when nothing holds it (or it has ended). */
export function holdsOf(id: string, progress: Pick<Progress, 'state' | 'paused' | 'governance'>): Held[] {
  if (!isActive(progress.state)) return [];
  const decision = decisionHold(id, progress.state);
  const governed = (progress.governance?.holds ?? []).map((h) => ({ kind: h.kind, reason: withBackfillId(h.reason, id) }));
  const pause = progress.paused && !progress.governance ? [{ kind: 'operator', reason: `paused by an operator ('backfill resume ${shellWord(id)}' goes on)` }] : [];
  return [...(decision ? [decision] : []), ...governed, ...pause];
}

/** What `wait` says after a look at the backfill (`before`: what it said last): a line only when what holds it changed. */
export function waitNote(id: string, before: WaitNote['held'], progress: Pick<Progress, 'state' | 'paused' | 'governance'>): WaitNote {
  // One that ended is told by wait's own answer.
  if (!isActive(progress.state)) return { held: before, line: null };
  const holds = holdsOf(id, progress);
  const held = holds.map((h) => h.kind).sort().join(',');
  if (held === before) return { held, line: null };
  if (held === '') return { held, line: `${id} goes on: nothing holds it any more` };
  return { held, line: `${id} is held, and starts no partition: ${holds.map((h) => h.reason).join('; ')}` };
}

/** How often `wait` looks at what holds the backfill. */
export const WAIT_LOOK_MS = 10_000;

/** Errors of a look that mean nothing can move the backfill until someone acts: said once, with the fix the error names. */
const STUCK: ReadonlySet<string> = new Set(['no_worker', 'workflow_task_failing']);

/**
 * Looks at the backfill every `everyMs` until the returned function is called, and `say`s each
 * line `waitNote` has. A look that fails says nothing (`wait` itself rides out a server that is
 * away), unless no worker polls the backfill's workflow task queue or its workflow task keeps
 * failing: that is said once, until a look succeeds again.
 */
export function noteHolds(client: Pick<BackfillClient, 'progress'>, id: string, say: (line: string) => void, everyMs = WAIT_LOOK_MS): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let held = '';
  let stuck = false;
  const look = async (): Promise<void> => {
    const progress = await client.progress(id).catch((error: unknown) => {
      if (!stopped && !stuck && error instanceof BackfillError && STUCK.has(error.code)) {
        stuck = true;
        say(`${id} cannot move: ${error.message} (wait goes on waiting)`);
      }
      return null;
    });
    if (stopped) return;
    if (progress) {
      if (stuck) say(`${id} goes on: its workflow answers again`);
      stuck = false;
      const note = waitNote(id, held, progress);
      held = note.held;
      if (note.line !== null) say(note.line);
    }
    timer = setTimeout(() => void look(), everyMs);
    // The looks never keep the process alive once wait has its answer.
    timer.unref();
  };
  void look();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
