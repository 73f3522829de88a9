/** `backfill lineage <node> <partition>`: what made a partition, version by version. */
import { Command } from '@commander-js/extra-typings';
import { BackfillError } from '../../core/errors.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, warehouseOption } from '../options.ts';

export function lineageCommand() {
  return documented(new Command('lineage'), HELP_GROUPS.audit, [
    ['backfill lineage daily_revenue 2024-03-01', 'every version of the partition: backfill, transform, parameters, code and input versions, rollbacks'],
    ['backfill lineage weekly_revenue 2024-W09 --warehouse postgres://backfill@db.internal:5432/warehouse --json', 'from a PostgreSQL warehouse, as JSON'],
  ])
    .description('which backfill, transform, parameters, code and input versions made a partition, version by version')
    .argument('<node>', 'the node (dataset)')
    .argument('<partition>', 'the partition key, e.g. 2024-03-01')
    .addOption(warehouseOption())
    .addOption(jsonOption())
    .action(async (node, partition, options) => {
      const [{ openExistingWarehouse }, { renderLineage }, { renderRestores }] = await Promise.all([
        import('../existing-warehouse.ts'),
        import('../render.ts'),
        import('../render-rollback.ts'),
      ]);
      const warehouse = await openExistingWarehouse(options.warehouse, 'lineage');
      try {
        const versions = await warehouse.ledger({ node, partition });
        if (versions.length === 0) {
          throw new BackfillError('not_found', `no version of ${node} ${partition} in the ledger of ${warehouse.location}: check the node id and the partition key (e.g. 2024-03-01, 2024-W09, 2024-03)`);
        }
        const rollbacks = await warehouse.rollbacks({ node, partition });
        print(options.json, { node, partition, current: versions.find((v) => v.current) ?? null, versions, rollbacks }, () =>
          [renderLineage(node, partition, versions), ...renderRestores(rollbacks)].join('\n'),
        );
      } finally {
        await warehouse.close();
      }
    });
}
