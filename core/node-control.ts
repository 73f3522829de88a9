/**
 * The parent's orders to a node workflow (`nodeControl`), checked where they arrive: anyone who
 * may signal workflows in the namespace can send one by hand (`temporal workflow signal`), and a
 * malformed one must not stop the node workflow or push its scheduler out of bounds. Checks
 * shape and bounds only: partitions of this node, limits the scheduler can run with, the node's
 * own id. Whether an order is wise is the parent's decision (docs/deploying.md, "What an
 * operator with Temporal access can do").
 */
import { z } from 'zod';
import { BackfillError } from './errors.ts';
import type { NodeControl } from './protocol.ts';
import { receivedRanges } from './ranges.ts';
import { SettingsSchema, settingsProblem } from './spec.ts';

const NodeSettingsSchema = z.strictObject({
  seq: z.number().int().min(1),
  rate: z.number().finite().min(0).nullable(),
  burst: z.number().finite().positive(),
  concurrency: z.number().int().min(0).max(100_000),
  paused: z.boolean(),
  /** Run windows (a governed parent): no batch starts at or after `openUntil`; running ones stop at `stopBy`. Both or neither. */
  openUntil: z.number().finite().optional(),
  stopBy: z.number().finite().optional(),
}).refine((s) => (s.openUntil === undefined) === (s.stopBy === undefined) && (s.openUntil === undefined || s.stopBy! >= s.openUntil), {
  message: 'openUntil and stopBy come together, stopBy not before openUntil',
  path: ['stopBy'],
});

/** `value` as a NodeControl for node `node` of `partitions` partitions, or a BackfillError naming what is wrong. */
export function parseNodeControl(value: unknown, node: string, partitions: number): NodeControl {
  const refuse = (why: string): never => {
    throw new BackfillError('invalid_argument', `not a control of node ${node}: ${why}`, 'control');
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse('not an object');
  const control = value as Record<string, unknown>;
  const unknownKeys = Object.keys(control).filter((k) => !['ready', 'settings', 'node', 'finish'].includes(k));
  if (unknownKeys.length > 0) refuse(`unknown field ${unknownKeys[0]}`);
  const ready = receivedRanges(control.ready, partitions);
  if (typeof ready === 'string') refuse(`ready ${ready}`);
  if (control.settings !== undefined) {
    const settings = NodeSettingsSchema.safeParse(control.settings);
    if (!settings.success) refuse(`settings.${settings.error.issues[0]!.path.join('.')}: ${settings.error.issues[0]!.message}`);
  }
  if (control.node !== undefined) {
    const spec = control.node as Record<string, unknown> | null;
    if (typeof spec !== 'object' || spec === null || spec.id !== node) refuse(`node is not a spec of ${node}`);
    const own = spec!;
    if (typeof own.transform !== 'string' || (own.sql !== undefined && typeof own.sql !== 'string')) refuse('node has no transform or its sql is not text');
    if (typeof own.params !== 'object' || own.params === null || !Array.isArray(own.checks)) refuse('node has no params or checks');
    const settings = SettingsSchema.safeParse(Object.fromEntries(Object.keys(SettingsSchema.shape).map((k) => [k, own[k]])));
    if (!settings.success) refuse(`node.${settings.error.issues[0]!.path.join('.')}: ${settings.error.issues[0]!.message}`);
    const problem = settingsProblem(settings.data!);
    if (problem) refuse(`node.${problem.field.join('.')}: ${problem.message}`);
  }
  if (control.finish !== undefined && typeof control.finish !== 'boolean') refuse('finish is not true or false');
  return control as NodeControl;
}
