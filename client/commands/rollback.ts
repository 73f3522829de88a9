/** `backfill rollback <id>`: every partition the backfill changed goes back to its version before it. */
import { Command } from '@commander-js/extra-typings';
import { EXIT } from '../exit-codes.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption } from '../options.ts';
import { withClient } from '../with-client.ts';

export function rollbackCommand() {
  return documented(new Command('rollback'), HELP_GROUPS.audit, [
    ['backfill rollback shop-2024', 'every partition it published goes back to its version before it; exit 2 if some were left alone'],
    ['backfill rollback shop-2024 --force', 'also those a later backfill changed since, undoing those changes'],
  ])
    .description('restore every partition the backfill changed to its version before it (checksums verified); exits 2 if some were left alone')
    .argument('<id>', 'backfill id (it must have ended: cancel or wait for it first)')
    .option('--force', 'also restore partitions that a later backfill changed since, undoing those changes')
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const { renderRollback } = await import('../render-rollback.ts');
      await withClient(command, async (client) => {
        const summary = await client.rollback(id, { force: options.force === true, ...(options.reason !== undefined ? { reason: options.reason } : {}) });
        print(options.json, summary, () => renderRollback(summary));
        if (summary.leftAlone > 0 && !summary.force) process.exitCode = EXIT.failures;
      });
    });
}
