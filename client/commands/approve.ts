/**
 * `backfill approve <id> --reason ...`: two gates, kept apart. With `--sign-key`, the policy's
 * signed approval of a backfill that waits for one before it starts; without, the approval of a
 * canary whose slice waits (its staged versions are published and the rest runs).
 */
import { Command } from '@commander-js/extra-typings';
import { BackfillError } from '../../core/errors.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print } from '../options.ts';
import { withClient } from '../with-client.ts';

export function approveCommand() {
  return documented(new Command('approve'), HELP_GROUPS.control, [
    ['backfill approve restate-2024 --reason reviewed-with-finance-FIN-1234 --sign-key ~/.ssh/id_ed25519', "the policy's approval: signs the backfill's id, plan hash and the reason with your key; the workers verify it against the policy's allowed signers"],
    ['backfill approve shop-2024 --reason canary-diff-reviewed-OPS-42', "a canary that waits (status says awaiting_canary): its slice is published and the rest of the backfill runs"],
  ])
    .description(
      "approve a backfill that waits: a canary (its slice is published and the rest runs), or, with --sign-key, the policy's approval (signs its id, its plan's hash and your reason with your ssh-ed25519 key)",
    )
    .argument('<id>', 'backfill id')
    .requiredOption('--reason <text>', 'why you approve it: kept in the audit trail (and signed, with --sign-key)')
    .option('--sign-key <file>', "the policy's approval: your ssh-ed25519 key (or its .pub when the key is in ssh-agent), one of the policy's allowed signers")
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      await withClient(command, async (client) => {
        if (options.signKey === undefined) {
          const progress = await client.progress(id);
          if (progress.state === 'awaiting_approval') {
            throw new BackfillError('approval_refused', `backfill '${id}' waits for the policy's approval, which is signed: add --sign-key <your ssh-ed25519 key> (one of the policy's allowed signers)`, 'sign-key');
          }
          const reply = await client.approveCanary(id, options.reason);
          print(options.json, { backfillId: id, canary: true, ...reply }, () => `${id}: the canary was approved by ${reply.by}: ${reply.versions} staged version${reply.versions === 1 ? '' : 's'} published; the rest of the backfill runs now`);
          return;
        }
        const result = await client.approve(id, { reason: options.reason, signKey: options.signKey });
        const still = result.state.holds?.filter((h) => h.kind !== 'approval') ?? [];
        print(options.json, { backfillId: id, ...result }, () =>
          `${id} approved by ${result.approver} (plan ${result.planHash.slice(0, 19)}…): it runs now${still.length > 0 ? `, once these lift: ${still.map((h) => h.reason).join('; ')}` : ''}`,
        );
      });
    });
}
