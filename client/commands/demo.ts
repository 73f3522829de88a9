/** `backfill demo`: a dev server, a worker and a backfill of the project's spec (else the example), with live progress. */
import { Command } from '@commander-js/extra-typings';
import { exitCodeFor } from '../exit-codes.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { codeVersionOption, jsonOption, warehouseOption } from '../options.ts';
import { PROJECT_SPEC, projectSpec } from '../project.ts';

export function demoCommand() {
  return documented(new Command('demo'), HELP_GROUPS.infra, [['backfill demo', 'a dev server, a worker and the example backfill with live bars; exit 0 when it completed']])
    .description(`all in one: a dev server, a worker and a backfill of ./${PROJECT_SPEC} (else the example) with live progress`)
    .option('--spec <file>', `the spec to run (default: ./${PROJECT_SPEC}, else the shop example)`)
    .addOption(warehouseOption())
    .addOption(codeVersionOption())
    .addOption(jsonOption())
    .action(async (options) => {
      const [{ runDemo }, { EXAMPLE_SPEC, portOr, startLocal }, { watch }, { settingsFromEnv }] = await Promise.all([
        import('../demo.ts'),
        import('../local.ts'),
        import('../watch.ts'),
        import('../../host/settings.ts'),
      ]);
      const state = await runDemo({
        spec: options.spec ?? projectSpec() ?? EXAMPLE_SPEC,
        json: options.json,
        port: await portOr(7233),
        uiPort: await portOr(8233),
        settings: settingsFromEnv(),
        warehouse: options.warehouse,
        codeVersion: options.codeVersion,
        startLocal,
        watch,
      });
      process.exitCode = exitCodeFor(state);
    });
}
