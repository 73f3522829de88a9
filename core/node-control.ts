/**
 * The parent's orders to a node workflow (`nodeControl`), checked where they arrive: anyone who
 * may signal workflows in the namespace can send one by hand (`temporal workflow signal`), and a
 * malformed one must not stop the node workflow or push its scheduler out of bounds. Checks
 * shape and bounds only: partitions of this node, limits the scheduler can run with, a whole spec
 * of this node with its partitions and dependencies. Whether an order is wise is the parent's decision (docs/deploying.md, "What an
 * operator with Temporal access can do").
 */
import { z } from 'zod';
import { BackfillError } from './errors.ts';
import type { NodeControl } from './protocol.ts';
import { receivedRanges } from './ranges.ts';
import { parseSentNode } from './spec-changes.ts';
import type { ResolvedNode } from './spec.ts';

const NodeSettingsSchema = z.strictObject({
  seq: z.number().int().min(1),
  rate: z.number().finite().min(0).nullable(),
  burst: z.number().finite().positive(),
  concurrency: z.number().int().min(0).max(100_000),
  paused: z.boolean(),
  /** Run windows (a governed parent): no batch starts at or after `openUntil`; running ones stop at `stopBy`. Both or neither. */
  openUntil: z.number().finite().optional(),
  stopBy: z.number().finite().optional(),
  /** A cost budget: no batch starts once the node's running total in `metric` reaches `until`. */
  allowance: z.strictObject({ metric: z.enum(['partitionSeconds', 'rows', 'reported']), until: z.number().finite().min(0) }).optional(),
}).refine((s) => (s.openUntil === undefined) === (s.stopBy === undefined) && (s.openUntil === undefined || s.stopBy! >= s.openUntil), {
  message: 'openUntil and stopBy come together, stopBy not before openUntil',
  path: ['stopBy'],
});

/** `value` as a NodeControl for the running node `current` of `partitions` partitions, or a BackfillError naming what is wrong. */
export function parseNodeControl(value: unknown, current: ResolvedNode, partitions: number): NodeControl {
  const node = current.id;
  const refuse = (why: string): never => {
    throw new BackfillError('invalid_argument', `not a control of node ${node}: ${why}`, 'control');
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse('not an object');
  const control = value as Record<string, unknown>;
  const unknownKeys = Object.keys(control).filter((k) => !['ready', 'settings', 'node', 'finish'].includes(k));
  if (unknownKeys.length > 0) refuse(`unknown field ${unknownKeys[0]}`);
  const ready = receivedRanges(control.ready, partitions);
  if (typeof ready === 'string') refuse(`ready ${ready}`);
  let settings: NodeControl['settings'];
  if (control.settings !== undefined) {
    const parsed = NodeSettingsSchema.safeParse(control.settings);
    if (!parsed.success) return refuse(`settings.${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
    settings = parsed.data;
  }
  const spec = control.node === undefined ? undefined : parseSentNode(control.node, current);
  if (typeof spec === 'string') return refuse(spec);
  if (control.finish !== undefined && typeof control.finish !== 'boolean') refuse('finish is not true or false');
  // What was parsed, never what was sent: the node workflow applies this.
  return {
    ...(control.ready !== undefined ? { ready: control.ready as string } : {}),
    ...(settings ? { settings } : {}),
    ...(spec ? { node: spec } : {}),
    ...(control.finish !== undefined ? { finish: control.finish as boolean } : {}),
  };
}
