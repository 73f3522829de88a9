/**
 * `backfill policy check <spec> [--policy file]`: what the policy says of a spec before it
 * starts (the same checks the workflow runs at the start). Exit 0 when the start would be
 * accepted, even if it would wait for an approval or a run window; 1 when it would be refused.
 *
 * The command is built by `policyCommand()`; the program attaches it (client/cli.ts).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import pc from 'picocolors';
import { BackfillError } from '../core/errors.ts';
import { parseConcurrency, parseRate } from '../core/limits.ts';
import { expandPlan } from '../core/plan.ts';
import { checkSpec, type PolicyCheck } from '../core/policy-check.ts';
import { parseRange } from '../core/spec.ts';
import { POLICY_ENV, POLICY_FILE, policyFileFrom, readPolicyFile } from '../activities/policy.ts';
import { EXIT } from './exit-codes.ts';
import { loadSpecFile } from './spec-file.ts';

export type PolicyCheckOptions = {
  spec: string;
  /** --policy; else $BACKFILL_POLICY; else ./backfill.policy.yaml when there is one. */
  policy?: string;
  from?: string;
  to?: string;
  rate?: number | null;
  concurrency?: number | null;
  /** The estimate of partition-seconds (plan --estimate's total), for approval.maxPartitionSeconds. */
  partitionSeconds?: number;
  reason?: string;
  now?: number;
};

/** The policy file the check reads: the flag, the variable, or the conventional file in the working directory. */
export function policyFileForCheck(flag: string | undefined, cwd = process.cwd()): string {
  const given = policyFileFrom(flag);
  if (given) return given;
  const local = resolve(cwd, POLICY_FILE);
  if (existsSync(local)) return local;
  throw new BackfillError('invalid_argument', `no policy to check against: give --policy <file> (the file the workers are given), set $${POLICY_ENV}, or put a ${POLICY_FILE} here`, 'policy');
}

export async function runPolicyCheck(options: PolicyCheckOptions): Promise<PolicyCheck> {
  const file = policyFileForCheck(options.policy);
  const [{ spec }, loaded] = await Promise.all([loadSpecFile(options.spec), readPolicyFile(file)]);
  const plan = expandPlan(spec, parseRange(options.from, options.to));
  return checkSpec(loaded.policy, { path: loaded.path, hash: loaded.hash }, {
    spec,
    partitions: plan.totalPartitions,
    limits: {
      ...(options.rate !== undefined ? { rate: options.rate } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    },
    ...(options.partitionSeconds !== undefined ? { estimatedPartitionSeconds: options.partitionSeconds } : {}),
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    at: options.now ?? Date.now(),
  });
}

const limit = (value: number | null, unit = '') => (value === null ? 'unlimited' : `${value.toLocaleString('en-US')}${unit}`);

export function renderPolicyCheck(check: PolicyCheck): string {
  const lines = [`policy ${check.policy.path} (${check.policy.hash.slice(0, 19)}…)`];
  if (check.violations.length === 0) lines.push(pc.green('✓ the start would be accepted'));
  else {
    lines.push(pc.red(`✗ the start would be refused (${check.violations.length} rule${check.violations.length > 1 ? 's' : ''}):`));
    for (const v of check.violations) lines.push(`  ${pc.bold(v.rule)}: ${v.message}`);
  }
  if (check.approval.needed) {
    lines.push(pc.yellow('it would wait for an approval (backfill approve <id> --reason ...) because:'));
    for (const reason of check.approval.reasons) lines.push(`  - ${reason}`);
  } else lines.push('no approval needed');
  if (check.window) lines.push(`run windows: ${check.window.description}`);
  lines.push(`limits: rate ${limit(check.limits.rate, '/s')}, concurrency ${limit(check.limits.concurrency)}`);
  const capped = Object.entries(check.nodeRates);
  if (capped.length > 0) lines.push(`node rates the policy sets: ${capped.map(([node, r]) => `${node} ${r}/s`).join(', ')}`);
  const { retries, cost } = check.budgets;
  if (retries) lines.push(`retry budget: ${retries.limit.toLocaleString('en-US')} failed attempts${retries.max !== null ? ` (at most ${retries.max.toLocaleString('en-US')})` : ''}`);
  if (cost) lines.push(`cost budget: ${cost.limit.toLocaleString('en-US')} ${cost.unit}${cost.max !== null ? ` (at most ${cost.max.toLocaleString('en-US')})` : ''}`);
  return lines.join('\n');
}

export function policyCommand(): Command {
  const policy = new Command('policy').description('what the policy the workers are given says of a backfill');
  policy
    .command('check')
    .description('check a spec against the policy before starting it: violations (exit 1), whether it would wait for an approval and why, the limits and budgets it would get')
    .argument('<spec>', 'spec file (.yaml, .json or .ts)')
    .addOption(new Option('--policy <file>', `the policy file (default $${POLICY_ENV}, else ./${POLICY_FILE})`).env(POLICY_ENV))
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .option('--rate <per-second>', 'the backfill-wide rate it would start with', (v: string) => parseRate(v))
    .option('--concurrency <n>', 'the backfill-wide concurrency it would start with', (v: string) => parseConcurrency(v))
    .option('--partition-seconds <n>', "the plan's estimated partition-seconds (plan --estimate), for the policy's approval.maxPartitionSeconds", (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new BackfillError('invalid_argument', `--partition-seconds must be a number of 0 or more (got '${v}')`, 'partition-seconds');
      return n;
    })
    .option('--reason <text>', 'the reason it would start with')
    .option('--json', 'machine-readable output')
    .action(async (spec: string, options: Omit<PolicyCheckOptions, 'spec'> & { json?: boolean }) => {
      const check = await runPolicyCheck({ spec, ...options });
      process.stdout.write(options.json ? `${JSON.stringify(check, null, 2)}\n` : `${renderPolicyCheck(check)}\n`);
      if (!check.allowed) process.exitCode = EXIT.error;
    });
  return policy;
}
