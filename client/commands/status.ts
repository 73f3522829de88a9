/** `backfill status <id>`: per-node progress, throughput, ETA and failures. */
import { Command } from '@commander-js/extra-typings';
import { BackfillError } from '../../core/errors.ts';
import { printableLines } from '../printable.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { connectionFlags, jsonOption, print, watchIntervalOption } from '../options.ts';
import { withClient } from '../with-client.ts';

export function statusCommand() {
  return documented(new Command('status'), HELP_GROUPS.run, [
    ['backfill status shop-2024', 'one line per node: done, running, failed, blocked, pending, rate, throughput, ETA'],
    ['backfill status shop-2024 --watch --interval 5s', 'live bars, refreshed every 5 seconds, until it ends'],
    ['backfill status shop-2024 --json', 'the same as JSON, with `waiting` (nodes whose task queue no worker polls)'],
  ])
    .description('per-node progress, throughput, ETA and failures')
    .argument('<id>', 'backfill id')
    .option('--watch', 'live progress bars until it ends (not on a terminal: a full status block on stdout every --interval)')
    .addOption(watchIntervalOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const { renderStatus } = await import('../render.ts');
      // The first unanswered query (no worker answers the running backfill), on either path: the last known status is shown for it below.
      let unanswered: BackfillError | undefined;
      const keepUnanswered = (error: unknown): null => {
        if (!unansweredBy(error)) throw error;
        unanswered = error;
        return null;
      };
      if (!options.watch) {
        // A running backfill is read without the Temporal SDK's client when the settings allow it
        // (light-status.ts); anything else, and every error, goes through the SDK's client below.
        const [{ lightStatus }, { resolveConnection }, { tracingRequested }] = await Promise.all([
          import('../light-status.ts'),
          import('../connection.ts'),
          import('../../workers/tracing.ts'),
        ]);
        const settings = resolveConnection(connectionFlags(command));
        const status = tracingRequested() ? null : await lightStatus(settings, id).catch(keepUnanswered);
        if (status) {
          print(options.json, status, () => renderStatus(status));
          return;
        }
      }
      await withClient(command, async (client) => {
        if (options.watch) {
          const { watchOnStdout } = await import('../watch.ts');
          const { final, shown } = await watchOnStdout(client, id, { json: options.json, intervalMs: options.interval });
          if (!shown) print(options.json, final, () => renderStatus(final));
          return;
        }
        const status = unanswered ? null : await client.status(id).catch(keepUnanswered);
        if (status) {
          print(options.json, status, () => renderStatus(status));
          return;
        }
        // No worker answers: what the server keeps of the backfill, marked as last known, then the error (exit 1) with the fix.
        const { renderLastKnown, UnansweredWithLastKnown } = await import('../last-known.ts');
        const error = unanswered!;
        const known = await client.lastKnown(id).catch(() => null);
        if (!known) throw error;
        if (!options.json) process.stdout.write(`${printableLines(renderLastKnown(known))}\n`);
        throw new UnansweredWithLastKnown(error, known);
        // It reads one backfill: a missing namespace is named when the backfill is not found.
      }, { checkNamespace: false });
    });
}

/** An error that says no worker answers a running backfill's query (none polls, none answered, or it is busy). */
function unansweredBy(error: unknown): error is BackfillError {
  return error instanceof BackfillError && (error.code === 'no_worker' || error.code === 'timeout');
}
