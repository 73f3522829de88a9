/**
 * What `backfill policy check <spec> [--policy file]` does (client/commands/policy.ts): what the
 * policy says of a spec before it starts, with the same checks the workflow runs at the start.
 * The estimate of partition-seconds the approval threshold needs is `plan --estimate`'s, from
 * the warehouse's ledger when there is one with history (the workers compute the same at the
 * start: the figure here is a preview, never trusted by the workflow). With `--only-changed` it
 * judges what `start --only-changed` would run, decided by the same code (client/only-changed.ts),
 * as the workflow judges such a start: the partitions it keeps are neither counted nor estimated.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import pc from 'picocolors';
import { BackfillError } from '../core/errors.ts';
import { expandPlan, requirePartitionsInRange } from '../core/plan.ts';
import { checkSpec, type PolicyCheck } from '../core/policy-check.ts';
import { parseRange } from '../core/spec.ts';
import { POLICY_ENV, POLICY_FILE, policyFileFrom, readPolicyFile } from '../activities/policy.ts';
import { estimatePlan } from './estimate.ts';
import type { ChangeSummary } from './only-changed.ts';
import { budgetsAsked } from './options.ts';
import { loadSpecFile } from './spec-file.ts';

export type PolicyCheckOptions = {
  spec: string;
  /** --policy; else $BACKFILL_POLICY; else ./backfill.policy.yaml when there is one. */
  policy?: string;
  from?: string;
  to?: string;
  rate?: number | null;
  concurrency?: number | null;
  /** The estimate of partition-seconds (plan --estimate's total), for approval.maxPartitionSeconds; else estimated from `warehouse`'s ledger. */
  partitionSeconds?: number;
  /** The warehouse whose ledger estimates partition-seconds (plan --estimate's default when unset), and --only-changed reads. */
  warehouse?: string;
  /** --only-changed: judge only the partitions `start --only-changed` would run. */
  onlyChanged?: boolean;
  /** With --only-changed: the workers' code version the ledger's is compared with. */
  codeVersion?: string;
  reason?: string;
  priority?: number;
  fairnessWeight?: number;
  /** Whether the start would be signed, and by whom. */
  signedBy?: string;
  /** start --retry-budget: failed attempts it would ask for. */
  retryBudget?: number;
  /** start --cost-budget: the cost it would ask for, in the policy's cost metric. */
  costBudget?: number;
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

export async function runPolicyCheck(options: PolicyCheckOptions): Promise<PolicyCheckResult> {
  const file = policyFileForCheck(options.policy);
  const [{ spec }, loaded] = await Promise.all([loadSpecFile(options.spec), readPolicyFile(file)]);
  const range = parseRange(options.from, options.to);
  const plan = expandPlan(spec, range);
  requirePartitionsInRange(spec, range);
  const changes = options.onlyChanged
    ? await (await import('./only-changed.ts')).onlyChanged(plan, { warehouse: options.warehouse, codeVersion: options.codeVersion })
    : undefined;
  let partitionSeconds = options.partitionSeconds;
  let estimateFrom: PolicyCheckResult['estimate'] = partitionSeconds !== undefined ? { partitionSeconds, source: '--partition-seconds' } : null;
  if (partitionSeconds === undefined && loaded.policy.approval.maxPartitionSeconds !== undefined) {
    const report = await estimatePlan(plan, {
      limits: { rate: spec.rate, concurrency: spec.concurrency },
      ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
      ...(changes ? { skip: changes.skip } : {}),
      calibrate: false,
    });
    if (report.partitionSeconds !== null) {
      partitionSeconds = report.partitionSeconds;
      const assumed = report.assumed.length > 0 ? `; ${report.assumed.join(', ')} from their parameters` : '';
      estimateFrom = { partitionSeconds, source: report.warehouseFound ? `the ledger of ${report.warehouse}${assumed}` : `no warehouse at ${report.warehouse}${assumed}` };
    } else {
      estimateFrom = { partitionSeconds: null, source: `no history of ${report.assumed.join(', ')} in ${report.warehouseFound ? `the ledger of ${report.warehouse}` : `a warehouse at ${report.warehouse} (none there)`}` };
    }
  }
  const check = checkSpec(loaded.policy, { path: loaded.path, hash: loaded.hash }, {
    spec,
    partitions: changes ? changes.summary.totalToRun : plan.totalPartitions,
    limits: {
      ...(options.rate !== undefined ? { rate: options.rate } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    },
    ...(partitionSeconds !== undefined ? { estimatedPartitionSeconds: partitionSeconds } : {}),
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    ...(options.signedBy !== undefined ? { signedBy: options.signedBy } : {}),
    ...(options.priority !== undefined || options.fairnessWeight !== undefined ? { priority: { key: options.priority ?? null, fairnessWeight: options.fairnessWeight ?? null } } : {}),
    ...budgetsAsked(options),
    at: options.now ?? Date.now(),
  });
  return { ...check, estimate: estimateFrom, ...(changes ? { onlyChanged: changes.summary } : {}) };
}

export type PolicyCheckResult = PolicyCheck & {
  /** The partition-seconds held against approval.maxPartitionSeconds, and where the figure came from (null: the policy needs none). */
  estimate: { partitionSeconds: number | null; source: string } | null;
  /** With --only-changed: what would run and what is kept, as `start --only-changed` reports it. */
  onlyChanged?: ChangeSummary;
};

const limit = (value: number | null, unit = '') => (value === null ? 'unlimited' : `${value.toLocaleString('en-US')}${unit}`);

export function renderPolicyCheck(check: PolicyCheck & Partial<Pick<PolicyCheckResult, 'estimate' | 'onlyChanged'>>): string {
  const lines = [`policy ${check.policy.path} (${check.policy.hash.slice(0, 19)}…)`];
  if (check.onlyChanged) {
    const { totalToRun, totalSkipped, warehouse } = check.onlyChanged;
    lines.push(`judged as start --only-changed: ${totalToRun.toLocaleString('en-US')} partitions would run, ${totalSkipped.toLocaleString('en-US')} unchanged ones are kept (the ledger of ${warehouse})`);
  }
  if (check.violations.length === 0) lines.push(pc.green('✓ the start would be accepted'));
  else {
    lines.push(pc.red(`✗ the start would be refused (${check.violations.length} rule${check.violations.length > 1 ? 's' : ''}):`));
    for (const v of check.violations) lines.push(`  ${pc.bold(v.rule)}: ${v.message}`);
  }
  if (check.approval.needed) {
    lines.push(pc.yellow("it would wait for an approval (backfill approve <id> --reason ... --sign-key <key>, by another of the policy's allowed signers) because:"));
    for (const reason of check.approval.reasons) lines.push(`  - ${reason}`);
  } else lines.push('no approval needed');
  if (check.estimate) {
    lines.push(check.estimate.partitionSeconds === null ? `estimate: unknown (${check.estimate.source}): the start would wait for an approval` : `estimate: ${check.estimate.partitionSeconds.toLocaleString('en-US')} partition-seconds (${check.estimate.source})`);
  }
  if (check.window) lines.push(`run windows: ${check.window.description}`);
  lines.push(`limits: rate ${limit(check.limits.rate, '/s')}, concurrency ${limit(check.limits.concurrency)}`);
  const capped = Object.entries(check.nodeRates);
  if (capped.length > 0) lines.push(`node rates the policy sets: ${capped.map(([node, r]) => `${node} ${r}/s`).join(', ')}`);
  const { retries, cost } = check.budgets;
  if (retries) lines.push(`retry budget: ${retries.limit.toLocaleString('en-US')} failed attempts${retries.max !== null ? ` (at most ${retries.max.toLocaleString('en-US')})` : ''}`);
  if (cost) lines.push(`cost budget: ${cost.limit.toLocaleString('en-US')} ${cost.unit}${cost.max !== null ? ` (at most ${cost.max.toLocaleString('en-US')})` : ''}`);
  return lines.join('\n');
}
