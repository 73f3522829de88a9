/** `--watch`: progress until the backfill ends. */
import { BackfillError } from '../core/errors.ts';
import { isActive, type BackfillState } from '../core/protocol.ts';
import type { BackfillClient, Status } from './backfill-client.ts';
import { print } from './options.ts';
import { ProgressView } from './progress-view.ts';
import { terminalText } from './printable.ts';
import { renderStatus } from './render.ts';
import { WorkflowBusyError } from './status-errors.ts';

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

/**
 * Polls status until the backfill ends; draws bars (and stalls) unless --json. The caller prints
 * how it ended: the view leaves that headline to it (on a terminal, the bars stay without their
 * header line; on a pipe, no line is written for the end). A server that
 * does not answer (a restart), a worker that is away (`no_worker`, `timeout`: one restarting) and
 * a workflow task that fails (`workflow_task_failing`: workers of two releases in a deploy, say)
 * and a workflow too busy to answer (workers poll its queue) are ridden out for WATCH_PATIENCE_MS, as `wait` rides them out, saying that it waits; `note`
 * says so (default: a line above the bars, or on stderr). `show`, when given, is handed every
 * status read (`last`: the watch ends at it) instead of the bars.
 */
export async function watch(
  client: Pick<BackfillClient, 'status'>,
  backfillId: string,
  json: boolean | undefined,
  intervalMs = 1000,
  note?: (line: string) => void,
  show?: (status: Status, last: boolean) => void,
): Promise<Status> {
  // `show` replaces the bars: each look is handed to it (status --watch on a pipe prints each as a block).
  const view = json || show ? undefined : new ProgressView();
  const say = note ?? ((line: string) => (view ? view.note(line) : process.stderr.write(`${terminalText(line)}\n`)));
  let unanswered: number | null = null;
  try {
    for (;;) {
      let progress: Status;
      try {
        progress = await client.status(backfillId);
        unanswered = null;
      } catch (error) {
        // Any other BackfillError is an answer (not found, ended without a worker to tell): it ends the watch.
        const workerAway = error instanceof BackfillError && (error.code === 'no_worker' || error.code === 'timeout');
        const failing = error instanceof BackfillError && error.code === 'workflow_task_failing';
        if (error instanceof BackfillError && !workerAway && !failing) throw error;
        if (unanswered === null) {
          unanswered = Date.now();
          const why = failing
            ? `${error.message} Waiting for it to pass`
            : error instanceof WorkflowBusyError
              ? `the backfill's workflow is busy (${error.why}); trying again`
              : workerAway
              ? `${error.message}; waiting for a worker`
              : `the Temporal server does not answer (${(error as Error).message}); waiting for it`;
          say(`${backfillId}: ${why} (for up to ${WATCH_PATIENCE_MS / 1000}s)`);
        }
        if (Date.now() - unanswered > WATCH_PATIENCE_MS) throw error;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const ends = watchEndsAt(progress.state);
      view?.update(progress, ends);
      show?.(progress, ends);
      if (ends) return progress;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    view?.stop();
  }
}

/**
 * `--watch` as the command line runs it (`status --watch`, `start --watch`). On a terminal: the
 * bars (nothing with `json`) until it ends. Not on a terminal (a pipe, a file, a CI log): no
 * bars; each look, every `intervalMs`, is a full status block on stdout, as `status` prints it,
 * the last one (how it ended) included. Notes (a worker or the server away) go to stderr, as on a
 * terminal. `shown`: the final status is on stdout already (the last block).
 */
export async function watchOnStdout(
  client: Pick<BackfillClient, 'status'>,
  backfillId: string,
  options: { json: boolean | undefined; intervalMs: number },
): Promise<{ final: Status; shown: boolean }> {
  const blocks = !options.json && !process.stdout.isTTY;
  const show = blocks ? (status: Status) => print(false, status, () => `${renderStatus(status)}\n`) : undefined;
  const final = await watch(client, backfillId, options.json, options.intervalMs, undefined, show);
  return { final, shown: blocks };
}
