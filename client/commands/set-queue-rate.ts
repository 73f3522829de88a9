/** `backfill set-queue-rate <task-queue> <per-second>`: the server-enforced cap of a task queue. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { sinceText } from '../unchanged.ts';
import { withClient } from '../with-client.ts';

export function setQueueRateCommand() {
  return documented(new Command('set-queue-rate'), HELP_GROUPS.control, [
    ['backfill set-queue-rate warehouse 20', 'the server starts at most 20 activities a second from task queue warehouse, across all its workers'],
    ['backfill set-queue-rate warehouse unlimited', "removes that cap (the workers' --task-queue warehouse=<rate> applies again)"],
    ['backfill set-queue-rate warehouse 80 --force --reason INC-88', 'changes it even though a running backfill on the queue does not answer (its policy is not asked; the output names it)'],
  ])
    .description("cap activities started per second on a task queue, across all its workers (server-enforced); 'unlimited' removes the cap")
    .argument('<task-queue>', "the activity task queue (a node's taskQueue)")
    .argument('<per-second>', "activities per second, or 'unlimited'")
    .option('--force', "change the cap even when a running backfill with nodes on the queue does not answer (no worker): its policy is not asked and its trail does not record it")
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (queue, value, options, command) => {
      const rate = (await import('../../core/limits.ts')).parseQueueRate(value);
      await withClient(command, async (client) => {
        const result = await client.setQueueRate(queue, rate, options);
        const cap = result.rate === null ? "no server-side cap (workers' own setting applies)" : `at most ${result.rate} activities/s across all workers`;
        print(options.json, result, () =>
          `task queue ${queue}: ${result.unchanged ? `was already ${result.rate === null ? `without a server-side cap (workers' own setting applies)` : cap}${sinceText(result.unchanged)}: nothing changed` : cap}` +
          (result.recordedBy.length > 0 ? `\n  recorded in the audit trail of ${result.recordedBy.join(', ')}` : '') +
          (result.unreachable.length > 0 ? `\n  not asked (no worker answered${result.unchanged ? '' : '; changed with --force'}): ${result.unreachable.join(', ')}` : '') +
          (result.notRecorded.length > 0 ? `\n  agreed but not recorded (no answer after the change): ${result.notRecorded.join(', ')}` : '') +
          (result.unused ? `\n  warning: no worker polls task queue ${queue} and no running backfill has nodes on it: check its name (a node's taskQueue in the spec), unless its workers are yet to start` : ''),
        );
      });
    });
}
