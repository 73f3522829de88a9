/** `backfill lineage <node> <partition>`: what made a partition, version by version. */
import { Command } from '@commander-js/extra-typings';
import type { LedgerNode } from '../../activities/warehouse/types.ts';
import { closestNames } from '../../core/closest.ts';
import { GRAINS, grainOfKeys, keyExample } from '../../core/calendar.ts';
import { BackfillError } from '../../core/errors.ts';
import { printableText } from '../printable.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, warehouseOption } from '../options.ts';

/** Every grain's key, for a node whose grain is not known. */
const KEYS = `e.g. ${GRAINS.map(keyExample).join(', ')}`;
/** The most nodes the error lists. */
const LISTED = 12;

/**
 * Why the ledger has no version of `node` `partition`: it has no such node (the ones it has, the
 * closest first), or the node and not the partition (the keys it has); `nodes` null or undefined:
 * a warehouse that cannot list them.
 */
export function notInLedger(node: string, partition: string, location: string, nodes: readonly LedgerNode[] | null | undefined): BackfillError {
  const [name, key] = [printableText(node), printableText(partition)];
  if (!nodes) return new BackfillError('not_found', `no version of ${name} ${key} in the ledger of ${location}: check the node id and the partition key (${KEYS})`);
  if (nodes.length === 0) return new BackfillError('not_found', `the ledger of ${location} has no versions at all: nothing was published to this warehouse (is it the one the workers write to? --warehouse or BACKFILL_WAREHOUSE)`);
  const found = nodes.find((n) => n.node === node);
  if (found) {
    const keys = found.partitions === 1 ? `its one partition is ${found.first}` : `its ${found.partitions.toLocaleString('en-US')} partitions run from ${found.first} to ${found.last}`;
    // Its first and last keys tell its grain, and the first is an example that exists; a static node's are listed already.
    const grain = grainOfKeys(found.first, found.last);
    const example = grain ? ` (its grain is ${grain}: e.g. ${found.first})` : '';
    return new BackfillError('not_found', `node ${name} has no version of partition ${key} in the ledger of ${location}: ${keys}; check the partition key${example}`);
  }
  const ids = nodes.map((n) => n.node);
  const closest = closestNames(node, ids);
  const rest = ids.filter((id) => !closest.includes(id));
  const listed = [...closest, ...rest].slice(0, LISTED);
  const more = ids.length > listed.length ? ` and ${ids.length - listed.length} more` : '';
  const guess = closest.length > 0 ? ` (did you mean ${closest.join(' or ')}?)` : '';
  return new BackfillError('not_found', `the ledger of ${location} has no node ${name}${guess}: it has versions of ${listed.join(', ')}${more}`);
}

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
        if (versions.length === 0) throw notInLedger(node, partition, warehouse.location, await warehouse.ledgerNodes?.());
        const rollbacks = await warehouse.rollbacks({ node, partition });
        const { rolledBackVersions } = await import('../rolled-back-versions.ts');
        const rolledBack = rolledBackVersions(versions, rollbacks);
        const json = { node, partition, current: versions.find((v) => v.current) ?? null, versions, rollbacks, rolledBack: [...rolledBack].map(([version, by]) => ({ version, by })) };
        print(options.json, json, () => [renderLineage(node, partition, versions, rolledBack), ...renderRestores(rollbacks)].join('\n'));
      } finally {
        await warehouse.close();
      }
    });
}
