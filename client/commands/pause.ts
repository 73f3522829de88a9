/** `backfill pause <id>`: no new partition starts; running ones finish. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { sinceText } from '../unchanged.ts';
import { withClient } from '../with-client.ts';
import { shellWord } from '../../core/shell-word.ts';

export function pauseCommand() {
  return documented(new Command('pause'), HELP_GROUPS.control, [['backfill pause shop-2024', 'no new partition starts; running ones finish (resume with backfill resume)']])
    .description('start no new partitions (running ones finish)')
    .argument('<id>', 'backfill id')
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      await withClient(command, async (client) => {
        const state = await client.pause(id, options);
        print(options.json, { backfillId: id, ...state }, () =>
          state.unchanged
            ? `${id} was already paused${sinceText(state.unchanged)}: nothing changed ('backfill resume ${shellWord(id)}' goes on)`
            : `${id} paused: running partitions finish, no new ones start`,
        );
      });
    });
}
