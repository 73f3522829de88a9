/** `--watch`: progress until the backfill ends. */
import { BackfillError } from '../core/errors.ts';
import { isActive, type BackfillState } from '../core/protocol.ts';
import type { BackfillClient, Status } from './backfill-client.ts';
import { ProgressView } from './progress-view.ts';

/** How long `--watch` rides out a Temporal server that does not answer (a restart) before it gives up. */
const WATCH_PATIENCE_MS = 120_000;

/**
 * Whether `--watch` stops at this state: once the backfill ended, and where it waits for an
 * operator's publish or approval of what it computed (staged, a canary's slice). A start held
 * by the policy (for approval, or until its run window opens) has not begun: it is watched on,
 * as `wait` waits on.
 */
export function watchEndsAt(state: BackfillState): boolean {
  return !isActive(state) || state === 'staged' || state === 'awaiting_canary';
}

/** Polls status until the backfill ends; draws bars (and stalls) unless --json. */
export async function watch(client: Pick<BackfillClient, 'status'>, backfillId: string, json: boolean | undefined, intervalMs = 1000): Promise<Status> {
  const view = json ? undefined : new ProgressView();
  let unanswered: number | null = null;
  try {
    for (;;) {
      let progress: Status;
      try {
        progress = await client.status(backfillId);
        unanswered = null;
      } catch (error) {
        // A BackfillError is an answer (not found, no worker); anything else is the connection: look again.
        if (error instanceof BackfillError) throw error;
        unanswered ??= Date.now();
        if (Date.now() - unanswered > WATCH_PATIENCE_MS) throw error;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      view?.update(progress);
      if (watchEndsAt(progress.state)) return progress;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    view?.stop();
  }
}
