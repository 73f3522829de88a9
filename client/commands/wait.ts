/** `backfill wait <id>`: blocks until the backfill ends; exit 0 only if it completed. */
import { Command } from '@commander-js/extra-typings';
import { parseDurationFlag } from '../duration-flag.ts';
import { exitCodeFor } from '../exit-codes.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print } from '../options.ts';
import { withClient } from '../with-client.ts';

export function waitCommand() {
  return documented(new Command('wait'), HELP_GROUPS.run, [
    ['backfill wait shop-2024', 'blocks until it ends: exit 0 completed, 2 with failed partitions, 3 cancelled, failed, terminated or timed out'],
    ['backfill wait shop-2024 --timeout 2h', 'gives up (exit 1) after two hours; the backfill runs on'],
    ['backfill wait shop-2024 --timeout 300', 'a bare number counts seconds'],
  ])
    .description('block until the backfill ends; exit 0 only if it completed')
    .argument('<id>', 'backfill id')
    .option('--timeout <duration>', 'give up (exit 1) after this long, e.g. 30m, 2h or 300 (a bare number counts seconds)', (v) => parseDurationFlag('--timeout', v))
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const [{ renderWaited }, { noteHolds }, { terminalText }] = await Promise.all([import('../render.ts'), import('../wait-notes.ts'), import('../printable.ts')]);
      await withClient(command, async (client) => {
        // On stderr: stdout keeps the answer alone (--json).
        const stopNotes = noteHolds(client, id, (line) => process.stderr.write(`${terminalText(line)}\n`));
        const outcome = await client.wait(id, options.timeout).finally(stopNotes);
        print(options.json, { backfillId: id, state: outcome.state, progress: outcome.progress, ...(outcome.failure !== undefined ? { failure: outcome.failure } : {}) }, () =>
          renderWaited(outcome),
        );
        process.exitCode = exitCodeFor(outcome.state, outcome.progress ?? undefined);
      });
    });
}
