/**
 * What a policy says of a spec before anything starts: the pure function behind
 * `backfill policy check spec.yaml [--policy file]`. The same `checkStart` the workflow
 * runs, with the plan's size, so the answer in advance is the answer at the start.
 */
import type { Limits } from './limits.ts';
import { checkStart, type Budgets, type Policy, type Violation } from './policy.ts';
import type { ResolvedSpec } from './spec.ts';
import { RunWindows, describeWindows } from './windows.ts';

export type PolicyCheckInput = {
  spec: ResolvedSpec;
  /** Partitions the backfill would run (the plan's total, after its range). */
  partitions: number;
  limits?: Partial<Limits>;
  estimatedPartitionSeconds?: number;
  reason?: string;
  /** The principal that would sign the start, when it would be signed. */
  signedBy?: string;
  /** The priority and fairness weight it would start with. */
  priority?: { key: number | null; fairnessWeight: number | null };
  /** The budgets it would ask for (start --retry-budget, --cost-budget). */
  budgets?: { retries?: number; cost?: number };
  /** Now: to say where the run windows stand. */
  at: number;
};

export type PolicyCheck = {
  policy: { path: string; hash: string };
  /** No violation: the start would be accepted (and may still wait for an approval or a window). */
  allowed: boolean;
  violations: Violation[];
  approval: { needed: boolean; reasons: string[] };
  /** Where the policy's run windows stand now; null without windows. */
  window: { open: boolean; description: string } | null;
  limits: Limits;
  nodeRates: Record<string, number>;
  budgets: Budgets;
  partitions: number;
};

export function checkSpec(policy: Policy, source: { path: string; hash: string }, input: PolicyCheckInput): PolicyCheck {
  const decision = checkStart(policy, {
    spec: input.spec,
    partitions: input.partitions,
    ...(input.limits ? { limits: input.limits } : {}),
    ...(input.estimatedPartitionSeconds !== undefined ? { estimatedPartitionSeconds: input.estimatedPartitionSeconds } : {}),
    ...(input.reason !== undefined ? { reason: input.reason } : {}),
    ...(input.signedBy !== undefined ? { signedBy: input.signedBy } : {}),
    ...(input.priority ? { priority: input.priority } : {}),
    ...(input.budgets ? { budgets: input.budgets } : {}),
  });
  const approval = decision.waitFor.find((w) => w.kind === 'approval');
  let window: PolicyCheck['window'] = null;
  if (policy.windows) {
    const windows = new RunWindows(policy.windows);
    window = { open: windows.isOpen(input.at), description: describeWindows(windows, input.at) };
  }
  return {
    policy: source,
    allowed: decision.violations.length === 0,
    violations: decision.violations,
    approval: { needed: approval !== undefined, reasons: approval?.kind === 'approval' ? approval.reasons : [] },
    window,
    limits: decision.limits,
    nodeRates: decision.nodeRates,
    budgets: decision.budgets,
    partitions: input.partitions,
  };
}
