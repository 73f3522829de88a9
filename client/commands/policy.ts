/**
 * `backfill policy check <spec> [--policy file]`: what the policy says of a spec before it starts
 * (the same checks the workflow runs at the start). Exit 0 when the start would be accepted, even
 * if it would wait for an approval or a run window; 1 when it would be refused.
 */
import { Argument, Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { closestNames } from '../../core/closest.ts';
import { BackfillError } from '../../core/errors.ts';
import { EXIT } from '../exit-codes.ts';
import { SPEC_IN_EXAMPLES as SPEC, HELP_GROUPS, documented } from '../help.ts';
import { shellWord } from '../../core/shell-word.ts';
import { checkOnlyChanged, codeVersionOption, costBudgetOption, fairnessWeightOption, jsonOption, print, priorityOption, retryBudgetOption, warehouseOption } from '../options.ts';

const POLICY_ENV = 'BACKFILL_POLICY';

function partitionSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new BackfillError('invalid_argument', `--partition-seconds must be a number of 0 or more (got '${v}')`, 'partition-seconds');
  return n;
}

const ACTIONS = ['check'] as const;

/**
 * The action, or what policy takes instead: a spec file written first (`backfill policy
 * backfill.yaml`) is the usual slip, and commander would only say that the spec is missing.
 */
export function policyAction(value: string): (typeof ACTIONS)[number] {
  const action = ACTIONS.find((a) => a === value);
  if (action !== undefined) return action;
  const [near] = closestNames(value, ACTIONS, 1);
  const actions = `policy's actions: ${ACTIONS.join(', ')}`;
  if (near !== undefined) throw new InvalidArgumentError(`policy has no action '${value}' (did you mean ${near}?); ${actions}, as in backfill policy ${near} <spec>`);
  throw new InvalidArgumentError(`'${value}' is not an action (${actions}): write the action before the spec, as in backfill policy check ${shellWord(value)}`);
}

export function policyCommand() {
  return documented(new Command('policy'), HELP_GROUPS.run, [
    [`backfill policy check ${SPEC} --policy backfill.policy.yaml`, 'violations (exit 1), whether it would wait for an approval and why, the limits and budgets it would get'],
    [`backfill policy check ${SPEC} --from 2024-03-01 --to 2024-04-01 --reason restate-march-FIN-1234 --json`, 'March only with its reason, against $BACKFILL_POLICY or ./backfill.policy.yaml, as JSON'],
    [`backfill policy check ${SPEC} --only-changed`, 'as start --only-changed would be judged: only the partitions whose inputs, spec or code changed count'],
  ])
    .description('policy check <spec>: what the policy the workers are given says of a spec before it starts: violations (exit 1), whether it would wait for an approval and why, the limits and budgets it would get')
    .addArgument(new Argument('<action>', `what to do: ${ACTIONS.join(', ')}`).argParser(policyAction))
    // Optional to commander only, so that a spec written in the action's place meets policyAction's message rather than "missing required argument 'spec'".
    .addArgument(new Argument('[spec]', 'spec file (.yaml, .json or .ts)'))
    .usage('[options] <action> <spec>')
    .addOption(new Option('--policy <file>', `the policy file (default $${POLICY_ENV}, else ./backfill.policy.yaml)`).env(POLICY_ENV))
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .option('--rate <per-second>', 'the backfill-wide rate it would start with')
    .option('--concurrency <n>', 'the backfill-wide concurrency it would start with')
    .addOption(priorityOption('the priority it would start with'))
    .addOption(fairnessWeightOption('the fairness weight it would start with'))
    .option('--partition-seconds <n>', "the plan's estimated partition-seconds (default: plan --estimate's, from the warehouse's ledger)", partitionSeconds)
    .addOption(warehouseOption())
    .option('--only-changed', 'judge what start --only-changed would run: only the partitions whose spec, code or upstream versions changed since their published version (reads the warehouse\'s ledger)')
    .addOption(codeVersionOption())
    .option('--reason <text>', 'the reason it would start with')
    .option('--signed-by <principal>', 'the allowed signer who would sign the start (start --sign-key)')
    .addOption(retryBudgetOption('the retry budget it would ask for (start --retry-budget)'))
    .addOption(costBudgetOption("the cost budget it would ask for, in the policy's cost metric (start --cost-budget)"))
    .addOption(jsonOption())
    .action(async (_action, spec, options, command) => {
      if (spec === undefined) return command.error("error: missing required argument 'spec': write backfill policy check <spec>", { code: 'commander.missingArgument' });
      // --warehouse serves the partition-seconds estimate too; --code-version only --only-changed.
      checkOnlyChanged(command, options.onlyChanged, ['warehouse']);
      const [{ runPolicyCheck, renderPolicyCheck }, { parseConcurrency, parseOperatorRate }] = await Promise.all([import('../policy-check.ts'), import('../../core/limits.ts')]);
      const check = await runPolicyCheck({
        spec,
        ...(options.policy !== undefined ? { policy: options.policy } : {}),
        ...(options.from !== undefined ? { from: options.from } : {}),
        ...(options.to !== undefined ? { to: options.to } : {}),
        ...(options.rate !== undefined ? { rate: parseOperatorRate(options.rate) } : {}),
        ...(options.concurrency !== undefined ? { concurrency: parseConcurrency(options.concurrency) } : {}),
        ...(options.priority !== undefined ? { priority: options.priority } : {}),
        ...(options.fairnessWeight !== undefined ? { fairnessWeight: options.fairnessWeight } : {}),
        ...(options.partitionSeconds !== undefined ? { partitionSeconds: options.partitionSeconds } : {}),
        ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
        ...(options.onlyChanged ? { onlyChanged: true } : {}),
        ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
        ...(options.reason !== undefined ? { reason: options.reason } : {}),
        ...(options.signedBy !== undefined ? { signedBy: options.signedBy } : {}),
        ...(options.retryBudget !== undefined ? { retryBudget: options.retryBudget } : {}),
        ...(options.costBudget !== undefined ? { costBudget: options.costBudget } : {}),
      });
      print(options.json, check, () => renderPolicyCheck(check));
      if (!check.allowed) process.exitCode = EXIT.error;
    });
}
