/**
 * Fix and go on: a backfill may run on with a new spec (a fixed transform, SQL, parameters,
 * checks or limits), but only one that describes the same partitions: the same nodes, the same
 * partitions of each, the same dependencies. Otherwise what is done would not mean the same.
 */
import { z } from 'zod';
import { BackfillError, formatPath } from './errors.ts';
import { BackfillConcurrencySchema, RateSchema } from './limits.ts';
import { describePartitions, describePartitionsChange, isResolvedPartitions } from './partitions.ts';
import { CheckSchema, KeySchema, ResolvedSettingsSchema, settingsProblem, type ResolvedNode, type ResolvedSpec } from './spec.ts';
import { WindowsSchema } from './windows.ts';
import { zodProblem } from './zod-errors.ts';

const stable = (value: unknown) => JSON.stringify(value);

/** What a partition computes and how it runs: the fields that may change. */
function runFields(node: ResolvedNode): unknown {
  const { id: _id, partitions: _partitions, dependsOn: _dependsOn, ...rest } = node;
  return rest;
}

/**
 * The ids of the nodes whose spec changed from `previous` to `next`; throws a BackfillError
 * naming the first difference that would change which partitions exist or what they need.
 */
export function changedNodes(previous: ResolvedSpec, next: ResolvedSpec): string[] {
  const before = new Map(previous.nodes.map((n) => [n.id, n]));
  const after = new Map(next.nodes.map((n) => [n.id, n]));
  const refuse = (what: string) => {
    throw new BackfillError('invalid_argument', `the new spec ${what}: a backfill goes on only with the same nodes, partitions and dependencies (start a new backfill for a different plan)`, 'spec');
  };
  for (const id of before.keys()) if (!after.has(id)) refuse(`has no node '${id}'`);
  for (const id of after.keys()) if (!before.has(id)) refuse(`adds node '${id}'`);
  const changed: string[] = [];
  for (const [id, old] of before) {
    const node = after.get(id)!;
    if (stable(old.partitions) !== stable(node.partitions)) {
      // Each side in words; a shape no spec resolves to (sent by hand) as sent.
      const side = (p: unknown) => (isResolvedPartitions(p) ? describePartitions(p) : stable(p));
      const words = isResolvedPartitions(old.partitions) && isResolvedPartitions(node.partitions) ? describePartitionsChange(old.partitions, node.partitions) : `${side(old.partitions)} → ${side(node.partitions)}`;
      refuse(`changes the partitions of '${id}' (${words})`);
    }
    if (stable(old.dependsOn) !== stable(node.dependsOn)) refuse(`changes what '${id}' depends on (${stable(old.dependsOn)} → ${stable(node.dependsOn)})`);
    if (stable(runFields(old)) !== stable(runFields(node))) changed.push(id);
  }
  return changed;
}

/**
 * A resolved spec as it arrives in a message (anyone may send one with Temporal's CLI): every
 * setting within the spec's own bounds. Partitions and dependencies are compared with the
 * running spec by `changedNodes`, which accepts only the same ones.
 */
const nodeFields = {
  id: z.string().min(1),
  transform: z.string().min(1),
  sql: z.string().min(1).optional(),
  params: z.record(z.string(), z.unknown()),
  partitions: z.unknown(),
  dependsOn: z.array(z.unknown()),
  checks: z.array(CheckSchema),
  key: KeySchema.optional(),
  adopt: z.boolean().optional(),
};
/**
 * A node as a resolved spec holds it (`resume --spec` sends one; the parent hands one to its node
 * workflow): whole, so nothing is filled in. Filled defaults would move a node sent without its
 * settings to the default task queue, where no worker may listen.
 */
const WholeNodeSchema = ResolvedSettingsSchema.extend(nodeFields);

const ResolvedSpecSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  transforms: z.array(z.string()),
  rate: RateSchema,
  concurrency: BackfillConcurrencySchema,
  /** Kept as sent; a running backfill goes on with the windows it started with. */
  windows: WindowsSchema.optional(),
  nodes: z.array(WholeNodeSchema).min(1),
});

/**
 * `value` read as a resolved spec: the parsed spec, or what is wrong with it (the field, then
 * what; `setting`: a node's setting out of its bounds, else not of the spec's shape).
 */
export function readResolvedSpec(value: unknown): { spec: ResolvedSpec } | { path: PropertyKey[]; message: string; setting: boolean } {
  // With the input, a field of another type reads "must be object", not "is required".
  const parsed = ResolvedSpecSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) return { ...zodProblem(parsed.error), setting: false };
  for (const [i, node] of parsed.data.nodes.entries()) {
    const problem = settingsProblem(node);
    if (problem) return { path: ['nodes', i, ...problem.field], message: problem.message, setting: true };
  }
  return { spec: parsed.data as ResolvedSpec };
}

/** Parses a resolved spec sent to a running backfill; throws an `invalid_spec` BackfillError naming the field. */
export function parseResolvedSpec(value: unknown): ResolvedSpec {
  const read = readResolvedSpec(value);
  if ('spec' in read) return read.spec;
  const { message, setting } = read;
  const where = formatPath(read.path) || 'spec';
  if (setting) throw new BackfillError('invalid_spec', `the new spec's ${where} ${message}`, where);
  throw new BackfillError('invalid_spec', `the new spec is not a resolved spec: ${where} ${message} (resolve it with resolveSpec, as backfill resume --spec does)`, where);
}

/**
 * A new spec of the running node `current` as it arrives in a `nodeControl` (anyone may send one
 * with Temporal's CLI): parsed whole, every setting within bounds, and the same node with the same
 * partitions and dependencies (the node workflow expands its plan from them when it continues as
 * new). Returns the parsed node, or why it is not one, naming the field.
 */
export function parseSentNode(value: unknown, current: ResolvedNode): ResolvedNode | string {
  const parsed = WholeNodeSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `${formatPath(['node', ...issue.path])}: ${issue.message}`;
  }
  const node = parsed.data as ResolvedNode;
  if (node.id !== current.id) return `node is not a spec of ${current.id}`;
  if (stable(node.partitions) !== stable(current.partitions) || stable(node.dependsOn) !== stable(current.dependsOn)) {
    return `node changes the partitions or dependencies of ${current.id}`;
  }
  const problem = settingsProblem(node);
  return problem ? `${formatPath(['node', ...problem.field])}: ${problem.message}` : node;
}
