/** The key columns a staged diff compares rows by, read again from a workflow's input. Apart from core/diff.ts because it needs the spec's schema (zod), which `backfill status` does not load. */
import { BackfillError } from './errors.ts';
import { KeySchema } from './spec.ts';

/**
 * The key columns `diffStaged` compares each node by (`DiffOptions.keys`), from the spec a
 * backfill's workflow input holds. Anyone who can start a workflow writes that input, so each
 * key is parsed again here: one that is not a list of distinct column names is refused.
 */
export function diffKeys(nodes: ReadonlyArray<{ id: string; key?: unknown }>): Record<string, string[]> {
  const keys: Record<string, string[]> = {};
  for (const node of nodes) {
    if (node.key === undefined) continue;
    const parsed = KeySchema.safeParse(node.key);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = `key${issue.path.map((p) => `[${String(p)}]`).join('')}`;
      throw new BackfillError('invalid_spec', `node ${node.id}'s ${where} in the backfill's input ${issue.message} (the spec was not checked by backfill start)`, `nodes.${node.id}.key`);
    }
    keys[node.id] = parsed.data;
  }
  return keys;
}
