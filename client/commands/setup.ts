/** `backfill setup`: registers the search attributes on the namespace (an admin step). */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print } from '../options.ts';
import { withClient } from '../with-client.ts';

export function setupCommand() {
  return documented(new Command('setup'), HELP_GROUPS.infra, [
    ['backfill setup', 'registers the search attributes on the namespace of TEMPORAL_NAMESPACE (needs admin rights)'],
    ['backfill setup --namespace analytics', 'on namespace analytics'],
  ])
    .description('register the search attributes BackfillId, BackfillNode and BackfillStatus on the namespace (an admin step, once per namespace)')
    .addOption(jsonOption())
    .action(async (options, command) => {
      await withClient(command, async (client) => {
        const result = await client.setup();
        print(options.json, result, () =>
          [
            `namespace ${result.namespace}:`,
            result.added.length > 0 ? `  added ${result.added.join(', ')}` : '  nothing to add',
            ...(result.existing.length > 0 ? [`  already registered: ${result.existing.join(', ')}`] : []),
          ].join('\n'),
        );
      });
    });
}
