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
  // The start's own check verifies the signature against the allowed signers: a principal none of them names is refused there (unknown_signer).
  const violations = [...decision.violations, ...unknownSigner(policy, input.signedBy)];
  const approval = decision.waitFor.find((w) => w.kind === 'approval');
  let window: PolicyCheck['window'] = null;
  if (policy.windows) {
    const windows = new RunWindows(policy.windows);
    window = { open: windows.isOpen(input.at), description: describeWindows(windows, input.at) };
  }
  return {
    policy: source,
    allowed: violations.length === 0,
    violations,
    approval: { needed: approval !== undefined, reasons: approval?.kind === 'approval' ? approval.reasons : [] },
    window,
    limits: decision.limits,
    nodeRates: decision.nodeRates,
    budgets: decision.budgets,
    partitions: input.partitions,
  };
}

/** A `--signed-by` principal that no allowed signer of the policy names. */
function unknownSigner(policy: Policy, signedBy: string | undefined): Violation[] {
  if (signedBy === undefined || policy.signers.some((signer) => signer.principals.includes(signedBy))) return [];
  const known = [...new Set(policy.signers.flatMap((signer) => signer.principals))];
  return [
    {
      rule: 'approval.allowedSigners',
      message:
        known.length === 0
          ? `the start would be signed by ${signedBy}, but the policy lists no allowed signers: a signed start is refused (unknown_signer) until it does`
          : `${signedBy} is not among the policy's allowed signers (${known.slice(0, 5).join(', ')}${known.length > 5 ? ', …' : ''}): a start it signs is refused (unknown_signer); sign with the key of one of them`,
    },
  ];
}
