/** `backfill plan <spec>`: validates a spec and previews its plan; needs no server. */
import { Command } from '@commander-js/extra-typings';
import { EXAMPLE_SPEC_PATH as SPEC, HELP_GROUPS, documented } from '../help.ts';
import { checkOnlyChanged, codeVersionOption, jsonOption, print, warehouseOption } from '../options.ts';

export function planCommand() {
  return documented(new Command('plan'), HELP_GROUPS.run, [
    [`backfill plan ${SPEC}`, 'every node, its partitions and dependencies, the critical path and the width'],
    [`backfill plan ${SPEC} --from 2024-03-01 --to 2024-04-01 --json`, 'March only, as JSON'],
    [`backfill plan ${SPEC} --only-changed --warehouse postgres://backfill@db.internal:5432/warehouse`, 'also count what would run again against that warehouse'],
  ])
    .description('validate a spec and preview its partitions, critical path and width; needs no server')
    .argument('<spec>', 'spec file (.yaml, .json or .ts)')
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .option('--only-changed', "also count the partitions that would run with --only-changed (reads the warehouse's ledger)")
    .addOption(warehouseOption())
    .addOption(codeVersionOption())
    .addOption(jsonOption())
    .action(async (file, options, command) => {
      checkOnlyChanged(command, options.onlyChanged);
      const [{ loadSpecFile }, { expandPlan, planSummary }, { parseRange }, { renderPlan }] = await Promise.all([
        import('../spec-file.ts'),
        import('../../core/plan.ts'),
        import('../../core/spec.ts'),
        import('../render.ts'),
      ]);
      const { spec } = await loadSpecFile(file);
      const plan = expandPlan(spec, parseRange(options.from, options.to));
      const summary = planSummary(plan);
      if (!options.onlyChanged) return print(options.json, summary, () => renderPlan(summary));
      const [{ onlyChanged }, { renderChanges }] = await Promise.all([import('../only-changed.ts'), import('../render.ts')]);
      const changes = (await onlyChanged(plan, options)).summary;
      print(options.json, { ...summary, onlyChanged: changes }, () => `${renderPlan(summary)}\n${renderChanges(changes)}`);
    });
}
