/** `backfill set-concurrency <id> <n>`: how many activities (a partition or a batch of them each) run at once, in the backfill or one node. */
import { Command } from '@commander-js/extra-typings';
import { cappedByOwnLimit, cappedLine } from '../capped.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { limitNow } from '../unchanged.ts';
import { withClient } from '../with-client.ts';

export function setConcurrencyCommand() {
  return documented(new Command('set-concurrency'), HELP_GROUPS.control, [
    ['backfill set-concurrency shop-2024 2 --node orders_clean', 'at most 2 activities of orders_clean at once (each a partition, or a batch run one partition after another)'],
    ['backfill set-concurrency shop-2024 32', 'at most 32 activities at once in all (a node never exceeds its own concurrency)'],
  ])
    .description('change how many activities (a partition or a batch each) run at once, for the backfill or one node')
    .argument('<id>', 'backfill id')
    .argument('<n>', "a whole number (or 'unlimited' for the backfill-wide limit)")
    .option('--node <node>', 'only this node')
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, value, options, command) => {
      const concurrency = (await import('../../core/limits.ts')).parseConcurrency(value, options.node);
      await withClient(command, async (client) => {
        const state = await client.setConcurrency(id, concurrency, options.node, options);
        const capped = options.node === undefined ? cappedByOwnLimit(state, 'concurrency') : [];
        const cappedByOwnConcurrency = capped.map((c) => ({ node: c.node, concurrency: c.limit }));
        print(options.json, { backfillId: id, ...state, ...(options.node === undefined ? { cappedByOwnConcurrency } : {}) }, () =>
          `${id}: ${options.node ? `node ${options.node}` : 'backfill'} concurrency ${limitNow(String(concurrency ?? 'unlimited'), state.unchanged)}${cappedLine(id, 'concurrency', state, capped)}`,
        );
      });
    });
}
