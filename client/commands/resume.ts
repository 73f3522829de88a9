/** `backfill resume <id>`: un-pauses a running backfill, or goes on with an ended one in a new run. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { goOnConcurrencyOption, goOnRateOption, goOnSignKeyOption, goOnSpecHelp, jsonOption, print, reasonOption } from '../options.ts';
import type { Unchanged } from '../../core/audit.ts';
import { sinceText } from '../unchanged.ts';
import { knownLink, webUiText } from '../web-ui.ts';
import { withClient } from '../with-client.ts';
import { keptOutputLines } from '../../core/kept-output.ts';
import { shellWord } from '../../core/shell-word.ts';

/** What still holds a backfill back after a control (an approval, a spent budget, a closed window), its commands naming `id`. */
export const heldLine = (state: { holds?: Array<{ reason: string }> } | null, id: string) =>
  state?.holds && state.holds.length > 0 ? `\n  still held: ${state.holds.map((h) => h.reason.replaceAll('<id>', shellWord(id))).join('; ')}` : '';

/**
 * A resume of a backfill no operator paused: nothing changed, though it may still be held (a
 * spent budget, an approval, a window), which `status` shows as paused.
 */
export function notPausedText(id: string, unchanged: Unchanged, state: { holds?: Array<{ reason: string }> }): string {
  const byOperator = state.holds && state.holds.length > 0 ? ' by an operator' : '';
  return `${id} was not paused${byOperator}${sinceText(unchanged)}: nothing changed${heldLine(state, id)}`;
}

/** The line that names the limits a new run was given (resume and retry-failed --rate, --concurrency). */
export function limitsLine(limits: { rate?: number | null; concurrency?: number | null }): string {
  const given = [
    ...(limits.rate !== undefined ? [`rate ${limits.rate === null ? 'unlimited' : `${limits.rate}/s`}`] : []),
    ...(limits.concurrency !== undefined ? [`concurrency ${limits.concurrency ?? 'unlimited'}`] : []),
  ];
  return given.length > 0 ? `\n  new run's limits: ${given.join(', ')}` : '';
}

/** The line that names the nodes a new spec changed. */
export const changedLine = (changed: string[]) => (changed.length > 0 ? `\n  new spec for: ${changed.join(', ')}` : '');

export function resumeCommand() {
  return documented(new Command('resume'), HELP_GROUPS.control, [
    ['backfill resume shop-2024', 'un-pauses a running backfill, or goes on with a cancelled or failed one (published partitions are skipped)'],
    ['backfill resume shop-2024 --spec fixed.yaml', 'goes on with a fixed spec: same nodes and partitions, new SQL, parameters, checks or node settings'],
    ['backfill resume shop-2024 --rate 5 --concurrency 2', 'goes on with a cancelled or failed one at most 5 partitions a second and 2 at once (a running one: set-rate, set-concurrency)'],
    ['backfill resume shop-2024 --reason source-fixed-INC-42 --sign-key ~/.ssh/id_ed25519', 'a signed new run of an ended backfill, where the policy wants every start signed (approval.signedStart)'],
  ])
    .description('go on: un-pause a running backfill, or resume a cancelled or failed one in a new run that skips what is published')
    .argument('<id>', 'backfill id')
    .option('--spec <file>', goOnSpecHelp('go on'))
    .addOption(goOnRateOption())
    .addOption(goOnConcurrencyOption())
    .addOption(reasonOption())
    .addOption(goOnSignKeyOption('resume'))
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const limits = (await import('../../core/limits.ts')).limitsAsked(options);
      const spec = options.spec !== undefined ? (await (await import('../spec-file.ts')).loadSpecFile(options.spec)).spec : undefined;
      await withClient(command, async (client) => {
        const result = await client.resume(id, {
          limits,
          ...(spec ? { spec } : {}),
          ...(options.reason !== undefined ? { reason: options.reason } : {}),
          ...(options.signKey !== undefined ? { signKey: options.signKey } : {}),
        });
        const resumed = result.resumed ? { ...result.resumed, uiUrl: knownLink(client, result.resumed.uiUrl) } : null;
        print(options.json, { backfillId: id, ...result, resumed }, () =>
          resumed
            ? `${id} resumed in a new run; published partitions are skipped${limitsLine(limits)}${changedLine(result.changed)}\n  web UI: ${webUiText(resumed.uiUrl)}${keptOutputLines(id, result.keptOldOutput, options.spec ?? '<spec>')}`
            : result.state?.unchanged
              ? notPausedText(id, result.state.unchanged, result.state)
              : `${id} resumed${changedLine(result.changed)}${heldLine(result.state, id)}${keptOutputLines(id, result.keptOldOutput, options.spec ?? '<spec>')}`,
        );
      });
    });
}
