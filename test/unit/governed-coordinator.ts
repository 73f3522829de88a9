/** A coordinator of a running backfill admitted under a policy, as the workflow makes it after its admission (for unit tests). */
import { BackfillCoordinator, type CoordinatorOptions } from '../../core/coordinator.ts';
import { Governance } from '../../core/governance.ts';
import type { Plan } from '../../core/plan.ts';
import { parsePolicy, type PolicyInput } from '../../core/policy.ts';
import type { ResolvedSpec } from '../../core/spec.ts';

export function governedCoordinator(
  spec: ResolvedSpec,
  plan: Plan,
  policy: PolicyInput,
  options: { backfillId: string; now: () => number; audit?: Governance['audit'] } & Omit<CoordinatorOptions, 'now'>,
): BackfillCoordinator {
  const { backfillId, now, audit, ...coordinatorOptions } = options;
  const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { now, ...coordinatorOptions });
  const admission = Governance.admit({
    backfillId,
    policy: parsePolicy(policy),
    policyHash: 'sha256:p',
    policyPath: 'p.yaml',
    spec,
    partitions: plan.totalPartitions,
    limits: c.controlState(),
    overrides: {},
    planHash: 'sha256:plan',
    request: { identity: 'starter' },
    startSignature: null,
    priority: { key: null, fairnessKey: null, fairnessWeight: null },
    now: now(),
    ...(audit ? { audit: audit.toJSON() } : {}),
  });
  if (!admission.admitted) throw new Error(admission.message);
  c.govern(admission.governance);
  c.releaseInitial();
  return c;
}
