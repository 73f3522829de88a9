/** `backfill audit <id>`: every operator action on a backfill, with who and why. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print } from '../options.ts';
import { withClient } from '../with-client.ts';

export function auditCommand() {
  return documented(new Command('audit'), HELP_GROUPS.audit, [
    ['backfill audit shop-2024', 'every start, pause, rate change, budget, approval and cancel: when, who, why, what changed'],
    ['backfill audit shop-2024 --json', 'the same as JSON, one object per action'],
  ])
    .description('list every operator action on a backfill: when, who (declared, or verified for signatures), why and what it changed')
    .argument('<id>', 'backfill id')
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const { renderAudit } = await import('../render-audit.ts');
      await withClient(command, async (client) => {
        const entries = await client.audit(id);
        print(options.json, { backfillId: id, entries }, () => renderAudit(id, entries));
      });
    });
}
