/** `backfill cancel <id>`: cancels the backfill; running partitions are cancelled cleanly. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { withClient } from '../with-client.ts';
import { shellWord } from '../../core/shell-word.ts';

export function cancelCommand() {
  return documented(new Command('cancel'), HELP_GROUPS.control, [['backfill cancel shop-2024', 'running partitions stop at their next heartbeat; nothing half-written is published']])
    .description('cancel the backfill; running partitions are cancelled cleanly')
    .argument('<id>', 'backfill id')
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      await withClient(command, async (client) => {
        const cancelled = await client.cancel(id, options);
        const skipped = cancelled.skipped === undefined ? '' : `\n  the announcement (who and why, for the audit trail) was skipped: ${cancelled.skipped}; the server's cancellation request carries the identity and reason`;
        print(options.json, { backfillId: id, cancelRequested: true, announced: cancelled.announced, ...(cancelled.skipped !== undefined ? { announcementSkipped: cancelled.skipped } : {}) }, () =>
          `${id}: cancellation requested (running partitions stop at their next heartbeat once a worker runs them); 'backfill wait ${shellWord(id)}' waits for it${skipped}`,
        );
      });
    });
}
