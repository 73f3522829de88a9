/** `backfill rollback <id>`: every partition the backfill changed goes back to its version before it. */
import { Command } from '@commander-js/extra-typings';
import type { RollbackWaiting } from '../backfill-client.ts';
import { EXIT } from '../exit-codes.ts';
import type { RollbackSummary } from '../../core/rollback.ts';
import type { StaleDownstream } from '../stale-downstream.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, reasonOption, warehouseOption } from '../options.ts';
import { withClient } from '../with-client.ts';
import { terminalText } from '../printable.ts';

/**
 * What the rollback left stale downstream, read from the warehouse it restored in when this
 * machine reaches it (--warehouse or BACKFILL_WAREHOUSE); null when it does not (a warehouse
 * that holds none of the rollback's moves, though it made some, is another one).
 */
async function downstreamOf(summary: RollbackSummary, location: string | undefined): Promise<StaleDownstream[] | null> {
  const [{ openLedgerIfThere }, { staleDownstream }] = await Promise.all([import('../existing-warehouse.ts'), import('../stale-downstream.ts')]);
  // Only a warning: a warehouse this machine cannot read leaves it out, and the rollback's summary stands.
  const warehouse = await openLedgerIfThere(location).catch(() => null);
  if (!warehouse) return summary.restored + summary.removed > 0 ? null : [];
  try {
    const moves = await warehouse.rollbacks({ rollbackId: summary.rollbackId });
    if (moves.length === 0 && summary.restored + summary.removed > 0) return null;
    return await staleDownstream(warehouse, moves.flatMap((m) => (m.fromVersion === null ? [] : [{ node: m.node, partition: m.partition, version: m.fromVersion }])));
  } catch {
    return null;
  } finally {
    await warehouse.close();
  }
}

export function rollbackCommand() {
  return documented(new Command('rollback'), HELP_GROUPS.audit, [
    ['backfill rollback shop-2024', 'every partition it published goes back to its version before it; exit 2 if some were left alone'],
    ['backfill rollback shop-2024 --force', 'also those a later backfill changed since, undoing those changes'],
    ['backfill rollback shop-2024 --dry-run --warehouse postgres://backfill@db.internal:5432/warehouse', "what it would restore, remove and leave alone per node (and who changed those), read from the workers' warehouse; starts nothing, changes nothing"],
  ])
    .description('restore every partition the backfill changed to its version before it (checksums verified); exits 2 if some were left alone')
    .argument('<id>', 'backfill id (it must have ended: cancel or wait for it first)')
    .option('--force', 'also restore partitions that a later backfill changed since, undoing those changes')
    .option('--dry-run', "only show what the rollback would restore, remove and leave alone, per node, read from the ledger of --warehouse (the workers' warehouse); start nothing, change nothing")
    .addOption(warehouseOption())
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const { downstreamUnchecked, renderDownstream, renderRollback, rollbackWaitsLine } = await import('../render-rollback.ts');
      const force = options.force === true;
      if (options.dryRun) {
        const { openExistingWarehouse } = await import('../existing-warehouse.ts');
        // Refused before connecting when no warehouse is there (opening one would create it empty).
        const warehouse = await openExistingWarehouse(options.warehouse, 'rollback --dry-run');
        try {
          await withClient(command, async (client) => {
            const preview = await client.previewRollback(id, warehouse, { force });
            print(options.json, preview, () => [renderRollback(preview, preview), ...renderDownstream(preview.downstream, true)].join('\n'));
            // The rollback would fail now (another backfill writes its datasets): a script that checks the dry run learns it.
            if (preview.refusedBy.length > 0) process.exitCode = EXIT.error;
          });
        } finally {
          await warehouse.close();
        }
        return;
      }
      await withClient(command, async (client) => {
        const started = await client.startRollback(id, { force, ...(options.reason !== undefined ? { reason: options.reason } : {}) });
        // On stderr, so that --json stays one document on stdout. What it waits for, if it waits, is said then; a mistyped id is only refused.
        const onNoWorker = (waiting: RollbackWaiting) => process.stderr.write(`${terminalText(rollbackWaitsLine(id, waiting))}\n`);
        const summary = await client.rollbackResult(id, { onNoWorker });
        if (started.historyGone) {
          process.stderr.write(`${terminalText(`the server keeps no history of ${id} (the namespace's retention removed it): the rollback walked the nodes the workers' ledger holds versions of`)}\n`);
        }
        const downstream = await downstreamOf(summary, options.warehouse);
        print(options.json, { ...summary, downstream: downstream ?? [], downstreamChecked: downstream !== null }, () =>
          [renderRollback(summary), ...(downstream === null ? [downstreamUnchecked()] : renderDownstream(downstream, false))].join('\n'),
        );
        if (summary.leftAlone > 0 && !summary.force) process.exitCode = EXIT.failures;
      });
    });
}
