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
      // Before the report is gathered (seconds of reads), so that a mistyped folder costs nothing.
      if (output !== '-') await writableFile(output);
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

/** Refuses an --output the report could not be written to: a folder that does not exist or may not be written, or a folder given as the file. */
async function writableFile(output: string): Promise<void> {
  const [{ access, stat }, { constants }, { dirname, resolve }] = await Promise.all([import('node:fs/promises'), import('node:fs'), import('node:path')]);
  const refuse = (why: string) => new BackfillError('invalid_argument', `cannot write the report to ${output}: ${why}; give --output a file in a folder that exists (or '-' for stdout)`, 'output');
  if ((await stat(output).catch(() => undefined))?.isDirectory()) throw refuse('it is a folder');
  await access(dirname(resolve(output)), constants.W_OK).catch((error: NodeJS.ErrnoException) => {
    throw refuse(error.code === 'ENOENT' || error.code === 'ENOTDIR' ? 'its folder does not exist' : 'this user may not write to its folder');
  });
}
