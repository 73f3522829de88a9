/** `backfill approve <id> --reason ... --sign-key <key>`: a signed approval of a backfill that waits for one. */
import { Command } from '@commander-js/extra-typings';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print } from '../options.ts';
import { withClient } from '../with-client.ts';

export function approveCommand() {
  return documented(new Command('approve'), HELP_GROUPS.control, [
    ['backfill approve restate-2024 --reason reviewed-with-finance-FIN-1234 --sign-key ~/.ssh/id_ed25519', "signs the backfill's id, plan hash and the reason with your key; the workers verify it against the policy's allowed signers"],
  ])
    .description("approve a backfill that waits for an approval: signs its id, its plan's hash and your reason with your ssh-ed25519 key (ssh-keygen -Y sign)")
    .argument('<id>', 'backfill id')
    .requiredOption('--reason <text>', 'why you approve it: signed, and kept in the audit trail')
    .requiredOption('--sign-key <file>', "your ssh-ed25519 key (or its .pub when the key is in ssh-agent), one of the policy's allowed signers")
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      await withClient(command, async (client) => {
        const result = await client.approve(id, { reason: options.reason, signKey: options.signKey });
        const still = result.state.holds?.filter((h) => h.kind !== 'approval') ?? [];
        print(options.json, { backfillId: id, ...result }, () =>
          `${id} approved by ${result.approver} (plan ${result.planHash.slice(0, 19)}…): it runs now${still.length > 0 ? `, once these lift: ${still.map((h) => h.reason).join('; ')}` : ''}`,
        );
      });
    });
}
