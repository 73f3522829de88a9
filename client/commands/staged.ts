/** A staged backfill (`start --stage`): `diff` compares its staged versions with the published ones, `publish` publishes them all at once, `discard` drops them. */
import { Command } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, warehouseOption } from '../options.ts';
import { withClient } from '../with-client.ts';

export function diffCommand() {
  return documented(new Command('diff'), HELP_GROUPS.audit, [
    ['backfill diff shop-2024', 'per dataset: rows added, removed and changed by the staged versions, and the change of each numeric column'],
    ['backfill diff shop-2024 --json', 'the same per partition, as JSON'],
  ])
    .description('compare a staged backfill with what is published: rows added, removed and changed, numeric columns')
    .argument('<id>', 'backfill id (started with --stage)')
    .addOption(warehouseOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const [{ openWarehouse }, { diffSummary }, { renderDiff }] = await Promise.all([
        import('../../activities/warehouse/index.ts'),
        import('../../activities/warehouse/staging.ts'),
        import('../render-diff.ts'),
      ]);
      await withClient(command, async (client) => {
        const run = await client.stagedRun(id);
        const warehouse = openWarehouse(options.warehouse, { inline: true });
        try {
          const summary = await diffSummary((page) => warehouse.diffStaged({ backfillId: run.backfillId, runKey: run.runKey }, page), undefined);
          print(options.json, { backfillId: id, phase: run.phase, ...summary }, () => renderDiff(id, run.phase, summary));
        } finally {
          await warehouse.close();
        }
      });
    });
}

function decisionCommand(action: 'publish' | 'discard') {
  const publish = action === 'publish';
  return documented(new Command(action), HELP_GROUPS.control, [
    publish
      ? ['backfill publish shop-2024 --reason reviewed', 'every staged version is published in one transaction: readers see all of it or none']
      : ['backfill discard shop-2024 --reason wrong-factor', 'the staged versions are dropped; what is published stays'],
  ])
    .description(publish ? 'publish every staged version of a staged backfill at once' : 'drop every staged version of a staged backfill; nothing is published')
    .argument('<id>', 'backfill id (started with --stage, now staged)')
    .option('--reason <text>', 'why, kept with the decision in the backfill\'s state')
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      await withClient(command, async (client) => {
        const reply = await client.decideStaged(id, action, options.reason);
        print(options.json, { backfillId: id, ...reply }, () => {
          const done = publish ? 'published' : 'discarded';
          const again = reply.versions === 0 && reply.before > 0 ? ` (${reply.before} were ${done} already)` : '';
          const nodes = reply.nodes.map((n) => `  ${n.node}: ${n.versions}`).join('\n');
          return `${pc.bold(id)}: ${reply.versions} staged version${reply.versions === 1 ? '' : 's'} ${done}${again}, by ${reply.by}${nodes ? `\n${nodes}` : ''}`;
        });
      });
    });
}

export const publishCommand = () => decisionCommand('publish');
export const discardCommand = () => decisionCommand('discard');
