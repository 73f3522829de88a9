/** `backfill set-queue-rate <task-queue> <per-second>`: the server-enforced cap of a task queue. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { withClient } from '../with-client.ts';

export function setQueueRateCommand() {
  return documented(new Command('set-queue-rate'), HELP_GROUPS.control, [
    ['backfill set-queue-rate warehouse 20', 'the server starts at most 20 activities a second from task queue warehouse, across all its workers'],
    ['backfill set-queue-rate warehouse unlimited', "removes that cap (the workers' --task-queue warehouse=<rate> applies again)"],
  ])
    .description("cap activities started per second on a task queue, across all its workers (server-enforced); 'unlimited' removes the cap")
    .argument('<task-queue>', "the activity task queue (a node's taskQueue)")
    .argument('<per-second>', "activities per second, or 'unlimited'")
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (queue, value, options, command) => {
      const rate = (await import('../../core/limits.ts')).parseRate(value);
      await withClient(command, async (client) => {
        const result = await client.setQueueRate(queue, rate, options);
        print(options.json, result, () =>
          `task queue ${queue}: ${result.rate === null ? "no server-side cap (workers' own setting applies)" : `at most ${result.rate} activities/s across all workers`}` +
          (result.recordedBy.length > 0 ? `\n  recorded in the audit trail of ${result.recordedBy.join(', ')}` : '') +
          (result.unreachable.length > 0 ? `\n  not recorded by ${result.unreachable.join(', ')} (no worker answered)` : ''),
        );
      });
    });
}
