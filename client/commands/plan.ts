/** `backfill plan <spec>`: validates a spec and previews its plan (and, on request, its estimate, its reasons or its picture); needs no server. */
import { Command, Option } from '@commander-js/extra-typings';
import { parseDurationFlag } from '../duration-flag.ts';
import { SPEC_IN_EXAMPLES as SPEC, HELP_GROUPS, documented } from '../help.ts';
import { checkOnlyChanged, codeVersionOption, givenOnCommandLine, jsonOption, policyOption, positiveInteger, print, warehouseOption } from '../options.ts';

/** `plan --format`'s pictures (client/graph/render.ts holds the same list; kept here so that the program loads no renderer). */
const GRAPH_FORMATS = ['svg', 'dot', 'mermaid'] as const;

export function planCommand() {
  return documented(new Command('plan'), HELP_GROUPS.run, [
    [`backfill plan ${SPEC}`, 'every node, its partitions and dependencies, the critical path and the width'],
    [`backfill plan ${SPEC} --from 2024-03-01 --to 2024-04-01 --json`, 'March only, as JSON'],
    [`backfill plan ${SPEC} --only-changed --warehouse postgres://backfill@db.internal:5432/warehouse`, 'also count what would run again against that warehouse'],
    [`backfill plan ${SPEC} --estimate --concurrency 20`, 'how long it will take, from the ledger of earlier runs (writes nothing)'],
    [`backfill plan ${SPEC} --estimate --policy backfill.policy.yaml`, "also follow the policy's run windows (the file the workers are given), as the backfill would wait for them"],
    [`backfill plan ${SPEC} --estimate --sample 3`, 'no history yet: time 3 partitions per node on the workers, staged and discarded (nothing is published)'],
    [`backfill plan ${SPEC} --explain --from 2024-03-03 --to 2024-03-10`, 'why each node and partition is in, and what it reads outside the range'],
    [`backfill plan ${SPEC} --format svg`, 'a picture of the graph, as SVG on stdout (also dot or mermaid)'],
  ])
    .description('validate a spec and preview its partitions, critical path and width; needs no server')
    .argument('<spec>', 'spec file (.yaml, .json or .ts)')
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .option('--only-changed', "also count the partitions that would run with --only-changed (reads the warehouse's ledger)")
    .addOption(warehouseOption())
    .addOption(codeVersionOption())
    .option('--explain', 'say why each node is in the backfill: the range, what it waits on through which mapping, what it reads outside the range; with --only-changed, what changed')
    .option('--estimate', "predict the wall time, each node's finish and the rows written, from the ledger of earlier backfills (writes nothing)")
    .option('--rate <per-second>', 'with --estimate: the backfill-wide rate start would be given')
    .option('--concurrency <n>', 'with --estimate: the backfill-wide concurrency start would be given')
    .option('--queue-cap <queue=per-second...>', "with --estimate: a task queue's server-enforced activities per second (as the workers' --task-queue name=N)")
    .option('--worker-slots <n>', 'with --estimate: activity slots of the workers per task queue (default 200, one worker)', positiveInteger('--worker-slots'))
    .option('--assume <duration>', 'with --estimate: how long a partition of a node without history takes (default: nothing beyond orchestration)', (v: string) =>
      parseDurationFlag('--assume', v, { minMs: 0 }),
    )
    .addOption(policyOption("with --estimate: the policy file the workers are given (docs/governance.md); its run windows are followed with the spec's, both must allow"))
    .option(
      '--sample <n>',
      "with --estimate: time n partitions per node (spread over the range) on the workers instead of reading history; they run as a staged backfill that is discarded, so nothing is published (needs a server and workers, and --warehouse set to the workers' warehouse)",
    )
    .addOption(new Option('--format <format>', 'draw the graph of datasets instead: svg, dot (Graphviz) or mermaid').choices(GRAPH_FORMATS))
    .addOption(jsonOption())
    .action(async (file, options, command) => {
      // --estimate reads the warehouse's ledger too.
      checkOnlyChanged(command, options.onlyChanged, options.estimate ? ['warehouse'] : []);
      const [{ loadSpecFile }, { expandPlan, planSummary, rangeBeyondSpec, requirePartitionsInRange }, { parseRange }, render, { checkEstimateFlags }, { checkPictureFlags }, { parseConcurrency, parseOperatorRate }] = await Promise.all([
        import('../spec-file.ts'),
        import('../../core/plan.ts'),
        import('../../core/spec.ts'),
        import('../render.ts'),
        import('../estimate.ts'),
        import('../graph/render.ts'),
        import('../../core/limits.ts'),
      ]);
      const { warehouse, rate, concurrency, policy, ...rest } = options;
      const flags = {
        ...rest,
        // $BACKFILL_POLICY is there for every command: only a --policy written out asks for the estimate.
        ...(policy !== undefined && givenOnCommandLine(command, 'policy') ? { policy } : {}),
        ...(warehouse !== undefined ? { warehouse } : {}),
        ...(rate !== undefined ? { rate: parseOperatorRate(rate) } : {}),
        ...(concurrency !== undefined ? { concurrency: parseConcurrency(concurrency) } : {}),
      };
      checkPictureFlags(flags);
      checkEstimateFlags(flags);
      const { spec } = await loadSpecFile(file);
      const range = parseRange(options.from, options.to);
      const plan = expandPlan(spec, range);
      requirePartitionsInRange(spec, range);
      const beyond = rangeBeyondSpec(spec, range);
      const planned = planSummary(plan, spec.windows);
      const summary = beyond === null ? planned : { ...planned, notes: [beyond, ...(planned.notes ?? [])] };
      if (options.format) {
        const [{ drawGraph }, { summaryGraph }] = await Promise.all([import('../graph/render.ts'), import('../graph/model.ts')]);
        return void process.stdout.write(await drawGraph(summaryGraph(summary), options.format));
      }
      if (!options.onlyChanged && !options.estimate && !options.explain) return print(options.json, summary, () => render.renderPlan(summary));
      const changes = options.onlyChanged ? await (await import('../only-changed.ts')).onlyChanged(plan, options) : undefined;
      const estimate = options.estimate
        ? await (async () => {
            const [{ estimatePlan, estimateOptions }, { policyFileFrom, readPolicyFile }] = await Promise.all([import('../estimate.ts'), import('../../activities/policy.ts')]);
            // Read as the workers read it (--policy, else $BACKFILL_POLICY): its run windows hold the backfill as the spec's do, its caps limit it as at the start.
            const policyFile = policyFileFrom(policy);
            const loaded = policyFile === undefined ? undefined : await readPolicyFile(policyFile);
            const sample = options.sample === undefined ? undefined : await (await import('../estimate-sample.ts')).sampleFromCommand(command, spec, plan, range, options.sample);
            return estimatePlan(plan, { ...estimateOptions(spec, flags, changes?.skip, loaded && { path: loaded.path, rules: loaded.policy }), ...(sample ? { sample } : {}) });
          })()
        : undefined;
      const explained = options.explain
        ? await (async () => {
            const [{ explainPlan }, { explainDocument, renderExplain }] = await Promise.all([import('../../core/explain.ts'), import('../render-explain.ts')]);
            const explanation = explainPlan(plan, range, changes?.changes.decisions);
            return { document: explainDocument(explanation, changes?.changes.details), text: () => renderExplain(explanation, changes?.changes.details) };
          })()
        : undefined;
      const renderEstimate = estimate ? (await import('../render-estimate.ts')).renderEstimate : undefined;
      const result = {
        ...summary,
        ...(changes ? { onlyChanged: changes.summary } : {}),
        ...(explained ? { explain: explained.document } : {}),
        ...(estimate ? { estimate } : {}),
      };
      print(options.json, result, () =>
        [
          render.renderPlan(summary),
          ...(changes ? [render.renderChanges(changes.summary)] : []),
          ...(explained ? [explained.text()] : []),
          ...(estimate && renderEstimate ? [renderEstimate(estimate)] : []),
        ].join('\n'),
      );
    });
}
