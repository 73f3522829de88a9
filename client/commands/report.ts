/** `backfill report <id>`: an audit report of what a backfill did. */
import { Command, Option } from '@commander-js/extra-typings';
import { BackfillError } from '../../core/errors.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, warehouseOption } from '../options.ts';
import { withClient } from '../with-client.ts';

/** The report's formats (client/report/render.ts renders each). */
const FORMATS = ['html', 'json', 'md'] as const;

export function reportCommand() {
  return documented(new Command('report'), HELP_GROUPS.audit, [
    ['backfill report shop-2024', 'writes report-shop-2024.html: one self-contained file with a timeline picture'],
    ['backfill report shop-2024 --output shop-2024.md', 'Markdown (the format follows the file name)'],
    ['backfill report shop-2024 --format json --output -', 'the report model as JSON, on stdout'],
  ])
    .description('an audit report of what a backfill did: spec, plan, per-node figures, checks, changes and a timeline picture')
    .argument('<id>', 'backfill id')
    .option('--output <file>', "where to write it ('-' for stdout; default report-<id>.<format>)")
    .addOption(new Option('--format <format>', 'html (one self-contained file), json (the report model) or md (default: from --output, else html)').choices(FORMATS))
    .addOption(warehouseOption())
    .addOption(jsonOption('print where it was written as JSON'))
    .action(async (id, options, command) => {
      if (options.json === true && options.output === '-') {
        throw new BackfillError('invalid_argument', "--json prints where the report was written, and --output - writes the report itself to stdout: for the report as JSON on stdout, use --format json --output -", 'json');
      }
      const [{ writeFile }, { openLedgerIfThere, warehouseTarget }, { gatherReport }, { formatOfPath, renderReport }] = await Promise.all([
        import('node:fs/promises'),
        import('../existing-warehouse.ts'),
        import('../report/gather.ts'),
        import('../report/render.ts'),
      ]);
      const format = options.format ?? formatOfPath(options.output ?? '') ?? 'html';
      const output = options.output ?? `report-${id}.${format}`;
      // Opening a warehouse that is not there would create an empty one: gatherReport decides without it.
      const target = warehouseTarget(options.warehouse);
      const warehouse = await openLedgerIfThere(target);
      try {
        await withClient(command, async (client) => {
          const report = await gatherReport(client, warehouse ?? { missing: target }, id);
          const text = await renderReport(report, format);
          if (output === '-') return void process.stdout.write(text);
          await writeFile(output, text);
          print(options.json, { backfillId: id, output, format, state: report.backfill.state, partitions: report.totals.partitions, published: report.totals.published }, () =>
            `wrote the ${format} report of ${id} (${report.backfill.state}, ${report.totals.published.toLocaleString('en-US')} partitions published) to ${output}`,
          );
        });
      } finally {
        await warehouse?.close();
      }
    });
}
