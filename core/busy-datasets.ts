/**
 * What to say of another backfill that holds the datasets a backfill would write, wherever waiting
 * for it or ending it is advised: the client's refusal of a start (`client/dataset-writers.ts`)
 * and the workflow's, when the warehouse's lease refuses it (`workflows/backfill-session.ts`).
 */
import { shellWord } from './shell-word.ts';

/** Until a staged backfill or a canary is decided, `wait` of it does not return. */
const untilDecided = (id: string): string => `a staged backfill or a canary ends only once published, approved or discarded: 'backfill status ${shellWord(id)}' says which`;

/** The command that waits for backfill `id` to end, and when that is. */
export const waitHint = (id: string): string => `'backfill wait ${shellWord(id)}'; ${untilDecided(id)}`;

/**
 * What to do about a backfill that ended without its cleanup (terminated): the leases its
 * warehouse keeps of its datasets stay, so every start of a backfill that writes them fails, and
 * its node workflows run on until they notice (minutes, for an idle one). A resumed run takes
 * both over (it stops the node workflows left and starts its own); cancelled, it ends itself and
 * lets the datasets go.
 */
export function leftRunning(backfillId: string): string {
  return (
    `a termination (or a workflow timeout) skips its cleanup, so its datasets stay leased in its warehouse (and its node workflows run on for minutes): 'backfill resume ${shellWord(backfillId)}' then 'backfill cancel ${shellWord(backfillId)}' ` +
    `end it and free them (the resumed run may finish a few partitions before the cancel reaches it)`
  );
}

/**
 * Why a rollback of `backfillId` is refused while another backfill runs and writes one of its
 * datasets, and what to do: said by the refusal itself and by `rollback --dry-run`. `detail`:
 * what was left as it was, in parentheses.
 */
export function leasedRollbackRefusal(holder: { node: string; backfillId: string; runKey: string }, backfillId: string, detail?: string): string {
  const other = shellWord(holder.backfillId);
  return (
    `dataset ${holder.node} is leased to backfill '${holder.backfillId}' (run ${holder.runKey}), which is running and writes it, so '${backfillId}' cannot be rolled back there now` +
    `${detail ? ` (${detail})` : ''}. Wait for '${holder.backfillId}' to end ('backfill wait ${other}') or cancel it ('backfill cancel ${other}'), then run 'backfill rollback ${shellWord(backfillId)}' again`
  );
}
