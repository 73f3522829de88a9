/** `backfill set-rate <id> <per-second>`: a running backfill's rate, or one node's. */
import { Command } from '@commander-js/extra-typings';
import { cappedByOwnLimit, cappedLine } from '../capped.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { limitNow } from '../unchanged.ts';
import { withClient } from '../with-client.ts';

export function setRateCommand() {
  return documented(new Command('set-rate'), HELP_GROUPS.control, [
    ['backfill set-rate shop-2024 10 --node orders_clean', 'orders_clean starts at most 10 partitions a second'],
    ['backfill set-rate shop-2024 50', 'the whole backfill: 50 a second, shared by the nodes with work (a node never exceeds its own rate)'],
    ['backfill set-rate shop-2024 unlimited', 'no backfill-wide rate; each node keeps its own'],
  ])
    .description("change the rate (partitions per second, or 'unlimited') of a running backfill or one node")
    .argument('<id>', 'backfill id')
    .argument('<per-second>', "partitions per second, or 'unlimited'")
    .option('--node <node>', 'only this node')
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, value, options, command) => {
      const rate = (await import('../../core/limits.ts')).parseOperatorRate(value);
      await withClient(command, async (client) => {
        const state = await client.setRate(id, rate, options.node, options);
        // A node whose own rate is lower keeps it: name those, so that a raised backfill rate surprises nobody.
        const capped = options.node === undefined ? cappedByOwnLimit(state, 'rate') : [];
        const cappedByOwnRate = capped.map((c) => ({ node: c.node, rate: c.limit }));
        print(options.json, { backfillId: id, ...state, ...(options.node === undefined ? { cappedByOwnRate } : {}) }, () =>
          `${id}: ${options.node ? `node ${options.node}` : 'backfill'} rate ${limitNow(rate === null ? 'unlimited' : `${rate}/s`, state.unchanged)}${cappedLine(id, 'rate', state, capped)}`,
        );
      });
    });
}
