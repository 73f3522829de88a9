/**
 * The policy: rules the platform team gives the workers (`backfill.policy.yaml`), which every
 * backfill meets at its start and at every control afterwards, whoever sends them (the
 * command line, the client library or Temporal's own CLI). One zod schema, and pure checks:
 *
 * - `checkStart`: what the policy says of a backfill about to start: the violations (each
 *   names its rule and how to comply), the limits and budgets it runs with, and what it must
 *   wait for (an approval, and why; a run window).
 * - `checkControl`: what it says of a control (set-rate, pause, ...) of a running backfill.
 * - `policyHash`: what the workflow records, so that the history says which policy judged it.
 *
 * Caps and thresholds left out of the file are not enforced: an empty policy allows all.
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { BackfillError, formatPath } from './errors.ts';
import { sha256Hex } from './hash.ts';
import { BackfillConcurrencySchema, NodeConcurrencySchema, type Limits } from './limits.ts';
import type { NodeOverrides } from './protocol.ts';
import { parseAllowedSigners, type AllowedSigner } from './signers.ts';
import type { ResolvedSpec } from './spec.ts';
import { RunWindows, WindowsSchema, describeWindows, effectiveLimits } from './windows.ts';
import { suggestingFields, zodProblem } from './zod-errors.ts';

/** Operator actions, each of which a policy may require a reason for. */
export const ACTIONS = [
  'start',
  'approve',
  'pause',
  'resume',
  'cancel',
  'retry',
  'set-rate',
  'set-concurrency',
  'set-queue-rate',
  'set-budget',
  'rollback',
  'publish',
  'discard',
] as const;
export type Action = (typeof ACTIONS)[number];

const GLOB = /^[A-Za-z0-9_.*?-]+$/;
const pattern = z.string().regex(GLOB, { message: 'must be a node id or task queue, or a glob of one with * and ? (e.g. finance_*)' });
const rate = z.number().positive({ message: 'must be a number of partitions per second above 0' });
const positive = (what: string) => z.number().positive({ message: `must be a number of ${what} above 0` });
const wholePositive = (what: string) => z.number().int({ message: `must be a whole number of ${what}` }).positive({ message: `must be a whole number of ${what} above 0` });
const duration = z.string().refine((s) => parseDuration(s) !== undefined, { message: 'is not a duration: write a number and a unit, e.g. 30m, 1h' });

export const DatasetCapSchema = z.strictObject({
  match: pattern,
  rate: rate.optional(),
  concurrency: NodeConcurrencySchema.optional(),
});

export const QueueCapSchema = z.strictObject({
  match: pattern,
  /** The most `set-queue-rate` may set the queue's server-enforced rate to. */
  rate: rate.optional(),
  /** The most partitions of one backfill running on the queue at once. */
  concurrency: BackfillConcurrencySchema.unwrap().optional(),
});

export const COST_METRICS = ['partitionSeconds', 'rows', 'reported'] as const;
export type CostMetric = (typeof COST_METRICS)[number];

/** Failed attempts: `retries: 100`, or `{ limit: 100, max: 1000 }` (max: the most set-budget may raise it to). */
export const RetryBudgetSchema = z.preprocess(
  (v) => (typeof v === 'number' ? { limit: v } : v),
  z
    .strictObject({ limit: wholePositive('failed attempts'), max: wholePositive('failed attempts').optional() })
    .refine((b) => b.max === undefined || b.max >= b.limit, { message: 'needs max >= limit', path: ['max'] }),
);

export const CostBudgetSchema = z
  .strictObject({
    /** partitionSeconds: the partitions' run time; rows: rows written; reported: what the transform reports per partition. */
    metric: z.enum(COST_METRICS, { message: `must be one of ${COST_METRICS.join(', ')}` }),
    /** With metric reported: what the number counts, for people (e.g. bytes scanned). */
    unit: z.string().min(1).optional(),
    limit: positive('cost units'),
    max: positive('cost units').optional(),
  })
  .refine((b) => b.max === undefined || b.max >= b.limit, { message: 'needs max >= limit', path: ['max'] })
  .refine((b) => b.metric !== 'reported' || b.unit !== undefined, { message: "is required with metric 'reported': name what the transform reports, e.g. bytes scanned", path: ['unit'] });

export const PolicySchema = z.strictObject({
  /** The version of this file's format. */
  version: z.literal(1, { message: 'must be 1 (the only version of the policy format)' }).default(1),
  caps: z
    .strictObject({
      backfill: z.strictObject({ rate: rate.optional(), concurrency: BackfillConcurrencySchema.unwrap().optional() }).default({}),
      datasets: z.array(DatasetCapSchema).default([]),
      taskQueues: z.array(QueueCapSchema).default([]),
    })
    .default({ backfill: {}, datasets: [], taskQueues: [] }),
  approval: z
    .strictObject({
      /** A backfill of more partitions than this waits for an approval. */
      maxPartitions: wholePositive('partitions').optional(),
      /** A backfill whose estimate (plan --estimate) is above this many partition-seconds waits for an approval. */
      maxPartitionSeconds: positive('partition-seconds').optional(),
      /** Datasets (node ids or globs) whose backfills always wait for an approval. */
      datasets: z.array(pattern).default([]),
      /** The starter signs the start with their key (then nobody approves their own backfill, provably). */
      signedStart: z.boolean().default(false),
      /** Signers, one a line as in git's allowed_signers file. */
      allowedSigners: z.array(z.string()).default([]),
      /** A file of signers in that format, relative to the policy file. */
      allowedSignersFile: z.string().min(1).optional(),
      /** How old a signature may be when it arrives. */
      maxSignatureAge: duration.default('1h'),
    })
    .default({ datasets: [], signedStart: false, allowedSigners: [], maxSignatureAge: '1h' }),
  /** When backfills may run (merged with a spec's own windows: both must allow). */
  windows: WindowsSchema.optional(),
  budgets: z
    .strictObject({
      /** Failed partition attempts across the backfill before it pauses. */
      retries: RetryBudgetSchema.optional(),
      cost: CostBudgetSchema.optional(),
    })
    .default({}),
  /** Task-queue priority and fairness between backfills (start --priority, --fairness-weight). */
  priority: z
    .strictObject({
      /** The most urgent priority a start may ask for: 1 is the most urgent, 5 the least (unset: any). */
      highest: z.number().int({ message: 'must be a whole number from 1 to 5' }).min(1, { message: 'must be a whole number from 1 to 5' }).max(5, { message: 'must be a whole number from 1 to 5' }).optional(),
      /** The largest fairness weight a start may ask for. */
      maxFairnessWeight: positive('fairness weight').optional(),
    })
    .default({}),
  reasons: z
    .strictObject({
      /** true: every action needs --reason; or the actions that do. */
      required: z.union([z.boolean(), z.array(z.enum(ACTIONS, { message: `must be one of ${ACTIONS.join(', ')}` }))]).default(false),
      /** The fewest characters a required reason has. */
      minLength: z.number().int().min(1).default(10),
    })
    .default({ required: false, minLength: 10 }),
});

export type PolicyInput = z.input<typeof PolicySchema>;
export type PolicyDocument = z.output<typeof PolicySchema>;

/** A policy ready to judge: its document, the signers parsed from inline lines and the signers file. */
export type Policy = PolicyDocument & { signers: AllowedSigner[] };

export type PolicySource = {
  /** Where the policy came from, for messages. */
  path?: string;
  /** The text of `approval.allowedSignersFile`, read by the caller (relative to the policy). */
  allowedSignersText?: string;
};

function policyError(source: PolicySource, path: ReadonlyArray<PropertyKey>, message: string): BackfillError {
  const where = formatPath(path) || 'policy';
  return new BackfillError('invalid_policy', `${source.path ? `${source.path}: ` : ''}${where}: ${message}`, where);
}

/** Validates a parsed policy document; a mistake throws a BackfillError naming the field and the fix. */
export function parsePolicy(document: unknown, source: PolicySource = {}): Policy {
  if (document === null || document === undefined) throw policyError(source, [], 'is empty: write at least version: 1 (an empty policy allows everything)');
  const parsed = PolicySchema.safeParse(document, { reportInput: true, error: suggestingFields });
  if (!parsed.success) {
    const { path, message } = zodProblem(parsed.error);
    throw policyError(source, path, message);
  }
  const policy = parsed.data;
  const signers: AllowedSigner[] = [];
  policy.approval.allowedSigners.forEach((line, i) => {
    try {
      signers.push(...parseAllowedSigners(line));
    } catch (error) {
      throw policyError(source, ['approval', 'allowedSigners', i], (error as Error).message.replace(/^line \d+: /, ''));
    }
  });
  if (policy.approval.allowedSignersFile !== undefined) {
    if (source.allowedSignersText === undefined) {
      throw policyError(source, ['approval', 'allowedSignersFile'], `(${policy.approval.allowedSignersFile}) was not read: give its text with the policy`);
    }
    try {
      signers.push(...parseAllowedSigners(source.allowedSignersText));
    } catch (error) {
      throw policyError(source, ['approval', 'allowedSignersFile'], `(${policy.approval.allowedSignersFile}) ${(error as Error).message}`);
    }
  }
  const needsSigners = policy.approval.maxPartitions !== undefined || policy.approval.maxPartitionSeconds !== undefined || policy.approval.datasets.length > 0 || policy.approval.signedStart;
  if (needsSigners && signers.length === 0) {
    throw policyError(source, ['approval', 'allowedSigners'], 'is empty, but the policy asks for approvals or signed starts: list who may sign (principal ssh-ed25519 AAAA...), inline or in allowedSignersFile');
  }
  return { ...policy, signers };
}

/** `sha256:<hex>` of the policy file's text and of its signers file: what a history records of the policy that judged it. */
export function policyHash(policyText: string, allowedSignersText?: string): string {
  return `sha256:${sha256Hex(allowedSignersText === undefined ? policyText : `${policyText}\0${allowedSignersText}`)}`;
}

/**
 * Whether a node id or task queue matches a policy pattern (`*` any run of characters, `?`
 * one). Matched without regular expressions, in time linear in both lengths' product, so that
 * no pattern of stars can take long.
 */
export function matches(glob: string, name: string): boolean {
  let g = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (g < glob.length && (glob[g] === '?' || glob[g] === name[n])) {
      g++;
      n++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      resume = n;
    } else if (star >= 0) {
      g = star + 1;
      n = ++resume;
    } else return false;
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

// ---- what the checks return ----

export type Violation = {
  /** The rule, as its path in the policy file (e.g. caps.datasets[0].rate). */
  rule: string;
  /** What is wrong and how to comply. */
  message: string;
};

export type Wait =
  | { kind: 'approval'; reasons: string[] }
  | { kind: 'window'; opensAt: number | null; description: string };

export type Budgets = {
  retries: { limit: number; max: number | null } | null;
  cost: { metric: CostMetric; unit: string; limit: number; max: number | null } | null;
};

export type StartRequest = {
  spec: ResolvedSpec;
  /** Partitions the backfill runs (after its range and any skip). */
  partitions: number;
  /** Backfill-wide limits given at the start (over the spec's own). */
  limits?: Partial<Limits>;
  /** The estimate of partition-seconds (plan --estimate), when known. */
  estimatedPartitionSeconds?: number;
  reason?: string;
  /** Budgets the starter asks for (within the policy's max). */
  budgets?: { retries?: number; cost?: number };
  /** The principal of a verified signed start, when there is one. */
  signedBy?: string;
  /** Now (the workflow's clock): with windows, whether the backfill must wait for one. */
  at?: number;
  /** The task-queue priority it starts with (1 most urgent … 5), and its fairness weight; null: unset. */
  priority?: { key: number | null; fairnessWeight: number | null };
  /**
   * A new run of a backfill that ended, started by `resume` (`resume`) or `retry-failed`
   * (`retry`): it is a start (every rule of a start applies) and that action too (its reasons rule).
   */
  goesOnAs?: 'resume' | 'retry';
};

export type StartDecision = {
  violations: Violation[];
  /** What it must wait for before any partition starts. */
  waitFor: Wait[];
  /** The backfill-wide limits it runs with: its own, with the policy's caps where it set none. */
  limits: Limits;
  /** Node rates the policy's dataset caps impose where the node set none (node id → rate). */
  nodeRates: Record<string, number>;
  budgets: Budgets;
};

const UNIT: Record<CostMetric, string> = { partitionSeconds: 'partition-seconds', rows: 'rows', reported: '' };

function unitOf(cost: NonNullable<PolicyDocument['budgets']['cost']>): string {
  return cost.metric === 'reported' ? cost.unit! : UNIT[cost.metric];
}

function reasonViolation(policy: Policy, action: Action, reason: string | undefined): Violation | null {
  const { required, minLength } = policy.reasons;
  const needed = required === true || (Array.isArray(required) && required.includes(action));
  if (!needed) return null;
  const given = (reason ?? '').trim();
  const rule = Array.isArray(required) ? `reasons.required[${required.indexOf(action)}]` : 'reasons.required';
  if (given.length === 0) return { rule, message: `${action} needs a reason: add --reason "why" (at least ${minLength} characters)` };
  if (given.length < minLength) return { rule: 'reasons.minLength', message: `the reason "${given}" is too short for ${action}: say why in at least ${minLength} characters` };
  return null;
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });

/** The first dataset cap matching each field, by node: a node meets every cap that matches it. */
function datasetCaps(policy: Policy, node: string): Array<{ cap: PolicyDocument['caps']['datasets'][number]; index: number }> {
  return policy.caps.datasets.flatMap((cap, index) => (matches(cap.match, node) ? [{ cap, index }] : []));
}

function queueCaps(policy: Policy, queue: string): Array<{ cap: PolicyDocument['caps']['taskQueues'][number]; index: number }> {
  return policy.caps.taskQueues.flatMap((cap, index) => (matches(cap.match, queue) ? [{ cap, index }] : []));
}

const BUDGET_FLAG = { retries: '--retry-budget', cost: '--cost-budget' } as const;

function checkBudgetRequest(policy: Policy, kind: 'retries' | 'cost', asked: number | undefined, out: Violation[], goesOnAs: GoesOnAs): number | null {
  const budget = policy.budgets[kind];
  if (!budget) return asked ?? null;
  if (asked === undefined) return budget.limit;
  if (budget.max !== undefined && asked > budget.max) {
    out.push({ rule: `budgets.${kind}.max`, message: `a ${kind} budget of ${fmt(asked)} is above the policy's most, ${fmt(budget.max)}: ${goesOnAs === undefined ? `ask for ${fmt(budget.max)} or less` : startFlagFix(goesOnAs, BUDGET_FLAG[kind], fmt(budget.max), '', 'the budgets of the run it follows')}` });
  }
  return asked;
}

/** Node rates the policy's dataset caps impose where a node sets none (node id → rate). */
export function capNodeRates(policy: Policy, spec: Pick<ResolvedSpec, 'nodes'>): Record<string, number> {
  const nodeRates: Record<string, number> = {};
  for (const node of spec.nodes) {
    for (const { cap } of datasetCaps(policy, node.id)) {
      if (cap.rate !== undefined && node.rate === null) nodeRates[node.id] = Math.min(nodeRates[node.id] ?? Infinity, cap.rate);
    }
  }
  return nodeRates;
}

/**
 * What the policy's caps say of a spec's own limits: each node's rate and concurrency against
 * the dataset caps that match it, and the partitions one backfill can run at once on each task
 * queue (its nodes' concurrency, bounded by `concurrency`) against the queue caps. The start
 * checks it, and so does a new spec sent to a running backfill.
 */
/**
 * What a spec's nodes break of the dataset and task-queue caps. `from` says who sends it, for the
 * fix: a start (undefined), a new run of an ended backfill, or a running backfill's new spec.
 */
export function specViolations(policy: Policy, spec: Pick<ResolvedSpec, 'nodes'>, concurrency: number | null, from?: GoesOnAs | 'running'): Violation[] {
  const violations: Violation[] = [];
  spec.nodes.forEach((node, n) => {
    for (const { cap, index } of datasetCaps(policy, node.id)) {
      if (cap.rate !== undefined && node.rate !== null && node.rate > cap.rate) {
        violations.push({ rule: `caps.datasets[${index}].rate`, message: `node ${node.id} (nodes[${n}]) has rate ${fmt(node.rate)}/s, above the cap of ${fmt(cap.rate)}/s for ${cap.match}: set its rate to ${fmt(cap.rate)} or less` });
      }
      if (cap.concurrency !== undefined && node.concurrency > cap.concurrency) {
        violations.push({ rule: `caps.datasets[${index}].concurrency`, message: `node ${node.id} (nodes[${n}]) has concurrency ${node.concurrency}, above the cap of ${cap.concurrency} for ${cap.match}: set its concurrency to ${cap.concurrency} or less` });
      }
    }
  });
  for (const [queue, load] of queueLoads(spec.nodes, concurrency)) {
    for (const { cap, index } of queueCaps(policy, queue)) {
      if (cap.concurrency !== undefined && load.most > cap.concurrency) {
        violations.push({
          rule: `caps.taskQueues[${index}].concurrency`,
          message: `up to ${load.most} partitions would run at once on task queue ${queue} (${load.nodes.join(', ')}), above its cap of ${cap.concurrency}: ${queueCapFix(cap.concurrency, from)}`,
        });
      }
    }
  }
  return violations;
}

function queueCapFix(cap: number, from: GoesOnAs | 'running'): string {
  if (from === undefined) return `start with --concurrency ${cap} or lower the nodes' concurrency`;
  if (from === 'running') return `lower the nodes' concurrency in this spec, or the backfill's first (backfill set-concurrency <this backfill's id> ${cap}) and send the spec again`;
  return `lower the nodes' concurrency in a spec (${commandOf(from)} --spec <file>), or the backfill's: ${goOnWith(from, '--concurrency', String(cap))}`;
}

/** Nodes with the concurrency they run at (a node's own, or an operator's for it). */
export type NodeConcurrency = ReadonlyArray<{ id: string; taskQueue: string; concurrency: number }>;

/** The most partitions a backfill runs at once on each task queue: its nodes' concurrency there, summed, bounded by the backfill's. */
function queueLoads(nodes: NodeConcurrency, concurrency: number | null): Map<string, { most: number; nodes: string[] }> {
  const loads = new Map<string, { most: number; nodes: string[] }>();
  for (const node of nodes) {
    const load = loads.get(node.taskQueue) ?? { most: 0, nodes: [] };
    load.most += node.concurrency;
    load.nodes.push(node.id);
    loads.set(node.taskQueue, load);
  }
  for (const load of loads.values()) load.most = Math.min(load.most, concurrency ?? Infinity);
  return loads;
}

/**
 * A set-concurrency (of a node, or of the backfill) as the start was judged: what the backfill
 * then runs at once on each task queue must stay within the queue's cap, unless the change does
 * not raise it (lowering towards the cap is always allowed).
 */
export function queueConcurrencyViolations(
  policy: Policy,
  before: { nodes: NodeConcurrency; concurrency: number | null },
  after: { nodes: NodeConcurrency; concurrency: number | null },
): Violation[] {
  const violations: Violation[] = [];
  const was = queueLoads(before.nodes, before.concurrency);
  for (const [queue, load] of queueLoads(after.nodes, after.concurrency)) {
    if (load.most <= (was.get(queue)?.most ?? 0)) continue;
    for (const { cap, index } of queueCaps(policy, queue)) {
      if (cap.concurrency !== undefined && load.most > cap.concurrency) {
        const most = load.most === Infinity ? 'unlimited' : String(load.most);
        violations.push({
          rule: `caps.taskQueues[${index}].concurrency`,
          message: `with this change up to ${most} partitions would run at once on task queue ${queue} (${load.nodes.join(', ')}), above its cap of ${cap.concurrency}: set a lower concurrency, here or on the queue's other nodes`,
        });
      }
    }
  }
  return violations;
}

/** What Temporal's matching service gives a task without a priority key (of its 5 levels), and a fairness key without a weight. */
export const DEFAULT_PRIORITY_KEY = 3;
export const DEFAULT_FAIRNESS_WEIGHT = 1;

/** What the policy says of a start's priority and fairness weight (unset: the server's defaults). */
export function priorityViolations(policy: Policy, priority: StartRequest['priority'], goesOnAs?: GoesOnAs): Violation[] {
  const violations: Violation[] = [];
  const { highest, maxFairnessWeight } = policy.priority;
  // Unset is not "no priority": the server schedules it at its defaults (priority 3, weight 1).
  const key = priority?.key ?? DEFAULT_PRIORITY_KEY;
  const weight = priority?.fairnessWeight ?? DEFAULT_FAIRNESS_WEIGHT;
  const unset = (given: number | null | undefined) => (given === null || given === undefined ? ' (unset, so the server\'s default)' : '');
  if (highest !== undefined && key < highest) {
    violations.push({ rule: 'priority.highest', message: `priority ${key}${unset(priority?.key)} is more urgent than this policy allows (the most urgent is ${highest}; 1 is the most urgent): ${startFlagFix(goesOnAs, '--priority', String(highest), ' or a larger number', 'the priority of the run it follows')}` });
  }
  if (maxFairnessWeight !== undefined && weight > maxFairnessWeight) {
    violations.push({ rule: 'priority.maxFairnessWeight', message: `a fairness weight of ${fmt(weight)}${unset(priority?.fairnessWeight)} is above the policy's most, ${fmt(maxFairnessWeight)}: ${startFlagFix(goesOnAs, '--fairness-weight', fmt(maxFairnessWeight), ' or less', 'the fairness weight of the run it follows')}` });
  }
  return violations;
}

type GoesOnAs = StartRequest['goesOnAs'];

/** The command that started a new run of an ended backfill, as an operator types it. */
const commandOf = (goesOnAs: GoesOnAs) => (goesOnAs === 'retry' ? 'retry-failed' : goesOnAs === 'resume' ? 'resume' : 'resume or retry-failed');

/**
 * The way on for a new run of an ended backfill (resume, retry-failed) refused for what it goes
 * on with from its last run: neither command has a start's flags, so only a new start of the id
 * changes it. `flags`: what that start gives.
 */
export function startAgain(flags: string): string {
  return `start it again: backfill start <spec> --id <this backfill's id> --rerun${flags ? ` ${flags}` : ''} (with --only-changed, only the partitions not yet published, or changed since, run again)`;
}

/**
 * How to come under a limit a start sets with `flag`. A new run of an ended backfill goes on with
 * what its last run had (`carried`): its command has no `flag`.
 */
function startFlagFix(goesOnAs: GoesOnAs, flag: string, value: string, atStart: string, carried: string): string {
  if (goesOnAs === undefined) return `start with ${flag} ${value}${atStart}`;
  const command = commandOf(goesOnAs);
  return `a ${command} goes on with ${carried} (${command} has no ${flag}), so ${startAgain(`${flag} ${value}`)}`;
}

/** The resume or retry-failed that gives a new run of an ended backfill its own backfill-wide `flag` (--rate, --concurrency). */
const goOnWith = (goesOnAs: 'resume' | 'retry', flag: '--rate' | '--concurrency', value: string) => `backfill ${commandOf(goesOnAs)} <this backfill's id> ${flag} ${value}`;

/**
 * How to come under a backfill-wide cap: a start's flag. A new run of an ended backfill goes on
 * with the limits of the run it follows (a spec's limits do not replace them) unless its resume
 * or retry-failed gives its own with the same flag.
 */
function lowerLimit(flag: '--rate' | '--concurrency', most: string, goesOnAs: GoesOnAs): string {
  if (goesOnAs === undefined) return `start with ${flag} ${most} or less`;
  const command = commandOf(goesOnAs);
  return `a ${command} goes on with the limits of the run it follows (a spec's limits do not replace them) unless it is given its own: ${goOnWith(goesOnAs, flag, most)} (or less)`;
}

/** What the policy says of a backfill about to start. */
export function checkStart(policy: Policy, request: StartRequest): StartDecision {
  const violations: Violation[] = [];
  const approvalReasons: string[] = [];
  const { spec } = request;
  const reason = reasonViolation(policy, 'start', request.reason) ?? (request.goesOnAs ? reasonViolation(policy, request.goesOnAs, request.reason) : null);
  if (reason) violations.push(reason);

  // Backfill-wide caps: a limit left unset takes the cap; one set above it is refused.
  const asked: Limits = {
    rate: request.limits?.rate !== undefined ? request.limits.rate : spec.rate,
    concurrency: request.limits?.concurrency !== undefined ? request.limits.concurrency : spec.concurrency,
  };
  const limits: Limits = { ...asked };
  const capRate = policy.caps.backfill.rate;
  if (capRate !== undefined) {
    if (asked.rate === null) limits.rate = capRate;
    else if (asked.rate > capRate) {
      violations.push({ rule: 'caps.backfill.rate', message: `the backfill's rate ${fmt(asked.rate)}/s is above the policy's cap of ${fmt(capRate)}/s: ${lowerLimit('--rate', fmt(capRate), request.goesOnAs)}` });
    }
  }
  const capConcurrency = policy.caps.backfill.concurrency;
  if (capConcurrency !== undefined) {
    if (asked.concurrency === null) limits.concurrency = capConcurrency;
    else if (asked.concurrency > capConcurrency) {
      violations.push({ rule: 'caps.backfill.concurrency', message: `the backfill's concurrency ${asked.concurrency} is above the policy's cap of ${capConcurrency}: ${lowerLimit('--concurrency', String(capConcurrency), request.goesOnAs)}` });
    }
  }

  violations.push(...specViolations(policy, spec, limits.concurrency, request.goesOnAs));
  const nodeRates = capNodeRates(policy, spec);

  // Budgets.
  const budgets: Budgets = { retries: null, cost: null };
  const retries = checkBudgetRequest(policy, 'retries', request.budgets?.retries, violations, request.goesOnAs);
  if (retries !== null) budgets.retries = { limit: retries, max: policy.budgets.retries?.max ?? null };
  const cost = policy.budgets.cost;
  if (cost) {
    const limit = checkBudgetRequest(policy, 'cost', request.budgets?.cost, violations, request.goesOnAs)!;
    budgets.cost = { metric: cost.metric, unit: unitOf(cost), limit, max: cost.max ?? null };
  } else if (request.budgets?.cost !== undefined) {
    violations.push({ rule: 'budgets.cost', message: 'a cost budget was asked for, but the policy defines no cost metric: leave it out, or ask the platform team for budgets.cost' });
  }

  // Approval.
  const { approval } = policy;
  if (approval.maxPartitions !== undefined && request.partitions > approval.maxPartitions) {
    approvalReasons.push(`${fmt(request.partitions)} partitions is above the ${fmt(approval.maxPartitions)} allowed without approval (approval.maxPartitions)`);
  }
  if (approval.maxPartitionSeconds !== undefined) {
    const estimate = request.estimatedPartitionSeconds;
    if (estimate === undefined) approvalReasons.push(`there is no estimate of its partition-seconds to hold against the ${fmt(approval.maxPartitionSeconds)} allowed without approval (approval.maxPartitionSeconds)`);
    else if (estimate > approval.maxPartitionSeconds) {
      approvalReasons.push(`its estimate of ${fmt(Math.round(estimate))} partition-seconds is above the ${fmt(approval.maxPartitionSeconds)} allowed without approval (approval.maxPartitionSeconds)`);
    }
  }
  const protectedNodes = spec.nodes.filter((n) => approval.datasets.some((p) => matches(p, n.id))).map((n) => n.id);
  if (protectedNodes.length > 0) approvalReasons.push(`it writes ${protectedNodes.join(', ')}, which always ${protectedNodes.length === 1 ? 'needs' : 'need'} approval (approval.datasets)`);
  violations.push(...priorityViolations(policy, request.priority, request.goesOnAs));
  if (approval.signedStart && request.signedBy === undefined) {
    const sign = '--sign-key <your ssh-ed25519 key>';
    violations.push({
      rule: 'approval.signedStart',
      message: `the policy wants every start signed: ${request.goesOnAs === undefined ? `start with ${sign}` : `a ${commandOf(request.goesOnAs)} starts a new run, so sign it: backfill ${commandOf(request.goesOnAs)} <id> ${sign}`} (one of the allowed signers)`,
    });
  }

  const waitFor: Wait[] = [];
  if (approvalReasons.length > 0) waitFor.push({ kind: 'approval', reasons: approvalReasons });
  if (policy.windows && request.at !== undefined) {
    const windows = new RunWindows(policy.windows);
    const now = effectiveLimits([windows], request.at, limits);
    if (now.paused) waitFor.push({ kind: 'window', opensAt: now.nextChangeAt, description: describeWindows(windows, request.at) });
  }
  return { violations, waitFor, limits, nodeRates, budgets };
}

// ---- controls ----

export type Control =
  | { action: 'set-rate'; rate: number | null; node?: string; reason?: string }
  | { action: 'set-concurrency'; concurrency: number | null; node?: string; reason?: string }
  | { action: 'set-queue-rate'; queue: string; rate: number | null; reason?: string }
  | { action: 'set-budget'; budget: 'retries' | 'cost'; limit: number; reason?: string }
  | { action: 'pause' | 'resume' | 'cancel' | 'retry' | 'approve' | 'rollback' | 'publish' | 'discard'; reason?: string };

/** What the policy says of a control of a running backfill: its violations (none: it may go ahead). */
export function checkControl(policy: Policy, control: Control, spec?: Pick<ResolvedSpec, 'nodes'>, setFix?: (most: string) => string): Violation[] {
  const reason = reasonViolation(policy, control.action, control.reason);
  return [...(reason ? [reason] : []), ...capViolations(policy, control, spec, setFix)];
}

/** What the policy's caps say of a control's value (its reason aside). */
function capViolations(policy: Policy, control: Control, spec?: Pick<ResolvedSpec, 'nodes'>, setFix: (most: string) => string = (most) => `set ${most} or less`): Violation[] {
  const violations: Violation[] = [];
  const node = 'node' in control && control.node ? spec?.nodes.find((n) => n.id === control.node) : undefined;
  switch (control.action) {
    case 'set-rate': {
      const { rate: value } = control;
      const show = value === null ? 'unlimited' : `${fmt(value)}/s`;
      if (control.node) {
        for (const { cap, index } of datasetCaps(policy, control.node)) {
          if (cap.rate !== undefined && (value === null || value > cap.rate)) {
            violations.push({ rule: `caps.datasets[${index}].rate`, message: `a rate of ${show} for ${control.node} is above the cap of ${fmt(cap.rate)}/s for ${cap.match}: ${setFix(fmt(cap.rate))}` });
          }
        }
      } else if (policy.caps.backfill.rate !== undefined && (value === null || value > policy.caps.backfill.rate)) {
        violations.push({ rule: 'caps.backfill.rate', message: `a backfill rate of ${show} is above the policy's cap of ${fmt(policy.caps.backfill.rate)}/s: ${setFix(fmt(policy.caps.backfill.rate))}` });
      }
      break;
    }
    case 'set-concurrency': {
      const value = control.concurrency;
      const show = value === null ? 'unlimited' : String(value);
      if (control.node) {
        for (const { cap, index } of datasetCaps(policy, control.node)) {
          if (cap.concurrency !== undefined && (value === null || value > cap.concurrency)) {
            violations.push({ rule: `caps.datasets[${index}].concurrency`, message: `a concurrency of ${show} for ${control.node} is above the cap of ${cap.concurrency} for ${cap.match}: ${setFix(String(cap.concurrency))}` });
          }
        }
        if (node) {
          for (const { cap, index } of queueCaps(policy, node.taskQueue)) {
            if (cap.concurrency !== undefined && (value === null || value > cap.concurrency)) {
              violations.push({ rule: `caps.taskQueues[${index}].concurrency`, message: `a concurrency of ${show} for ${control.node} is above the cap of ${cap.concurrency} on its task queue ${node.taskQueue}: ${setFix(String(cap.concurrency))}` });
            }
          }
        }
      } else if (policy.caps.backfill.concurrency !== undefined && (value === null || value > policy.caps.backfill.concurrency)) {
        violations.push({ rule: 'caps.backfill.concurrency', message: `a backfill concurrency of ${show} is above the policy's cap of ${policy.caps.backfill.concurrency}: ${setFix(String(policy.caps.backfill.concurrency))}` });
      }
      break;
    }
    case 'set-queue-rate': {
      for (const { cap, index } of queueCaps(policy, control.queue)) {
        if (cap.rate !== undefined && (control.rate === null || control.rate > cap.rate)) {
          const show = control.rate === null ? 'unlimited' : `${fmt(control.rate)}/s`;
          violations.push({ rule: `caps.taskQueues[${index}].rate`, message: `a rate of ${show} for task queue ${control.queue} is above its cap of ${fmt(cap.rate)}/s: set ${fmt(cap.rate)} or less` });
        }
      }
      break;
    }
    case 'set-budget': {
      const budget = policy.budgets[control.budget];
      if (!budget) {
        if (control.budget === 'cost') violations.push({ rule: 'budgets.cost', message: 'the policy defines no cost budget to set: ask the platform team for budgets.cost' });
      } else if (budget.max !== undefined && control.limit > budget.max) {
        violations.push({ rule: `budgets.${control.budget}.max`, message: `a ${control.budget} budget of ${fmt(control.limit)} is above the policy's most, ${fmt(budget.max)}: set ${fmt(budget.max)} or less` });
      }
      break;
    }
    default:
      break;
  }
  return violations;
}

/**
 * What the policy says of the node limits an operator set (set-rate, set-concurrency) on the run
 * a new run of an ended backfill goes on from: each meets the caps as that control would, and as
 * the new run keeps them, only a new start clears one above a cap. Their reasons are not asked
 * again: each control was judged, its reason with it, when it was sent (the audit trail has it),
 * and the new run's own reason is judged by the rule of its action (`checkStart`'s goesOnAs).
 * `reasons`: as before the patch carried-overrides-caps-only, when a carried limit was judged as
 * a control with no reason at all (refused whenever the policy required a reason of set-rate or
 * set-concurrency), for the histories of that judgement to replay.
 */
export function carriedOverrideViolations(policy: Policy, overrides: NodeOverrides, spec: Pick<ResolvedSpec, 'nodes'>, goesOnAs: GoesOnAs, options: { reasons?: boolean } = {}): Violation[] {
  const command = commandOf(goesOnAs);
  const fix = (most: string) => `an operator set it on the run this one follows, and a ${command} keeps it (set ${most} or less applies only to a running backfill), so ${startAgain('')}`;
  const judge = options.reasons === true ? checkControl : capViolations;
  return Object.entries(overrides).flatMap(([node, own]) => [
    ...(own.rate !== undefined ? judge(policy, { action: 'set-rate', rate: own.rate, node }, spec, fix) : []),
    ...(own.concurrency !== undefined ? judge(policy, { action: 'set-concurrency', concurrency: own.concurrency, node }, spec, fix) : []),
  ]);
}

/** Whether the judgement of carried node limits before the patch carried-overrides-caps-only would ask them for a reason (the policy requires one of set-rate or set-concurrency): only such a run asks for the patch. */
export function carriedOverridesAskedReasons(policy: Policy, overrides: NodeOverrides): boolean {
  return Object.values(overrides).some(
    (own) => (own.rate !== undefined && reasonViolation(policy, 'set-rate', undefined) !== null) || (own.concurrency !== undefined && reasonViolation(policy, 'set-concurrency', undefined) !== null),
  );
}

/** How old a signature may be when it arrives (approval.maxSignatureAge). */
export function maxSignatureAgeMs(policy: Policy): number {
  return parseDuration(policy.approval.maxSignatureAge)!;
}

/**
 * How the message of a start the policy refuses begins: the workflow fails with it, and the
 * worker's log reads it to say so on one line (the failure's type does not reach the log).
 */
export const POLICY_REFUSAL = 'the policy refuses this backfill:';

/** The message for a list of violations: every rule and its fix, one a line. */
export function describeViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.rule}: ${v.message}`).join('\n');
}
