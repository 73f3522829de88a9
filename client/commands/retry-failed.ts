/** `backfill retry-failed <id>`: runs the failed partitions again, then the ones they blocked. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { goOnConcurrencyOption, goOnRateOption, goOnSignKeyOption, goOnSpecHelp, jsonOption, print, reasonOption } from '../options.ts';
import { withClient } from '../with-client.ts';
import { knownLink, webUiText } from '../web-ui.ts';
import { keptOutputLines, type KeptOldOutput } from '../../core/kept-output.ts';
import { changedLine, limitsLine } from './resume.ts';

/** What retry-failed says it did: in the running backfill, or in a new run of an ended one. */
export function renderRetried(
  id: string,
  result: { retried: number; blocked?: number; changed: string[]; keptOldOutput?: KeptOldOutput; resumed: { uiUrl: string | null } | null },
  limits: { rate?: number | null; concurrency?: number | null } = {},
  specFile = '<spec>',
): string {
  // The audit entry says these terms too: the failed partitions and those blocked behind them.
  const behind = result.blocked ? ` and the ${result.blocked} blocked behind ${result.retried === 1 ? 'it' : 'them'}` : '';
  const failed = `${result.retried} failed partition${result.retried === 1 ? '' : 's'}${behind}${changedLine(result.changed)}`;
  const kept = keptOutputLines(id, result.keptOldOutput, specFile);
  return result.resumed ? `${id} resumed in a new run to retry ${failed}${limitsLine(limits)}\n  web UI: ${webUiText(result.resumed.uiUrl)}${kept}` : `${id}: retrying ${failed}${kept}`;
}

export function retryFailedCommand() {
  return documented(new Command('retry-failed'), HELP_GROUPS.control, [
    ['backfill retry-failed shop-2024', 'runs the failed partitions again, then the partitions they blocked'],
    ['backfill retry-failed shop-2024 --node orders_clean --spec fixed.yaml', "only orders_clean's failures, with the fixed spec"],
    ['backfill retry-failed shop-2024 --rate 5 --concurrency 2', 'retries the failures of an ended backfill that overloaded its warehouse at most 5 partitions a second and 2 at once'],
    ['backfill retry-failed shop-2024 --reason source-fixed-INC-42 --sign-key ~/.ssh/id_ed25519', 'a signed new run of an ended backfill, where the policy wants every start signed (approval.signedStart)'],
  ])
    .description('run the failed partitions again, then the ones they blocked (of a running or an ended backfill)')
    .argument('<id>', 'backfill id')
    .option('--node <node>', 'only this node')
    .option('--spec <file>', goOnSpecHelp('retry'))
    .addOption(goOnRateOption())
    .addOption(goOnConcurrencyOption())
    .addOption(reasonOption())
    .addOption(goOnSignKeyOption('retry-failed'))
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const limits = (await import('../../core/limits.ts')).limitsAsked(options);
      const spec = options.spec !== undefined ? (await (await import('../spec-file.ts')).loadSpecFile(options.spec)).spec : undefined;
      await withClient(command, async (client) => {
        const result = await client.retryFailed(id, options.node, spec, {
          limits,
          ...(options.reason !== undefined ? { reason: options.reason } : {}),
          ...(options.signKey !== undefined ? { signKey: options.signKey } : {}),
        });
        const shown = { ...result, resumed: result.resumed ? { ...result.resumed, uiUrl: knownLink(client, result.resumed.uiUrl) } : null };
        print(options.json, { backfillId: id, ...shown }, () => renderRetried(id, shown, limits, options.spec));
      });
    });
}
