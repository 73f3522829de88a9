/** Fix and go on: which spec changes a backfill accepts, and which it refuses naming the difference. */
import { describe, expect, it } from 'vitest';
import { thrownBackfillError } from './backfill-error.ts';
import { changedNodes, parseResolvedSpec } from '../../core/spec-changes.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';

const base: SpecInput = {
  name: 'fix',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-10' },
  nodes: [
    { id: 'a', sql: 'SELECT 1 AS x' },
    { id: 'b', sql: 'SELECT x FROM a', dependsOn: ['a'], checks: [{ type: 'row_count', min: 1 }] },
  ],
};
const spec = (edit: (s: SpecInput) => void = () => undefined) => {
  const copy = structuredClone(base);
  edit(copy);
  return resolveSpec(copy);
};

describe('changedNodes', () => {
  it('lists nothing for the same spec', () => {
    expect(changedNodes(spec(), spec())).toEqual([]);
  });

  it('lists the nodes whose SQL, parameters, checks, transform or limits changed', () => {
    expect(changedNodes(spec(), spec((s) => void (s.nodes[0]!.sql = 'SELECT 2 AS x')))).toEqual(['a']);
    expect(changedNodes(spec(), spec((s) => void (s.nodes[1]!.params = { k: 1 })))).toEqual(['b']);
    expect(changedNodes(spec(), spec((s) => void (s.nodes[1]!.checks = [])))).toEqual(['b']);
    expect(changedNodes(spec(), spec((s) => void (s.nodes[0]!.concurrency = 9)))).toEqual(['a']);
    expect(changedNodes(spec(), spec((s) => void (s.defaults = { retry: { maxAttempts: 5 } })))).toEqual(['a', 'b']);
  });

  const refused: Array<[string, (s: SpecInput) => void, RegExp]> = [
    ['a node removed', (s) => void s.nodes.pop(), /has no node 'b'/],
    ['a node added', (s) => void s.nodes.push({ id: 'c', transform: 'noop' }), /adds node 'c'/],
    ['other partitions', (s) => void (s.partitions = { grain: 'day', start: '2024-01-01', end: '2024-01-11' }), /changes the partitions of 'a'/],
    ['another grain', (s) => void (s.nodes[1]!.partitions = { grain: 'week' }), /changes the partitions of 'b'/],
    ['another dependency', (s) => void (s.nodes[1]!.dependsOn = [{ node: 'a', mapping: { lag: { from: -1, to: 0 } } }]), /changes what 'b' depends on/],
  ];
  it('shows a change of partitions in words: the dates as a spec writes them, the keys added and dropped', () => {
    const message = (edit: (s: SpecInput) => void) => thrownBackfillError(() => changedNodes(spec(), spec(edit))).message;
    const way = 'a backfill goes on only with the same nodes, partitions and dependencies (start a new backfill for a different plan)';
    expect(message((s) => void (s.partitions = { grain: 'day', start: '2024-01-01', end: '2024-01-11' }))).toBe(
      `the new spec changes the partitions of 'a' (day partitions 2024-01-01 to 2024-01-10 → 2024-01-01 to 2024-01-11): ${way}`,
    );
    expect(message((s) => void (s.nodes[1]!.partitions = { grain: 'hour', start: '2024-01-01T05' }))).toBe(
      `the new spec changes the partitions of 'b' (day partitions 2024-01-01 to 2024-01-10 → hour partitions 2024-01-01T05 to 2024-01-10): ${way}`,
    );
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);
    const staticSpec = (list: string[]) => resolveSpec({ ...structuredClone(base), partitions: { keys: list } });
    expect(thrownBackfillError(() => changedNodes(staticSpec(keys(3)), staticSpec(keys(4)))).message).toBe(
      `the new spec changes the partitions of 'a' (static keys k0, k1, k2 → k0, k1, k2, k3: adds k3): ${way}`,
    );
    expect(thrownBackfillError(() => changedNodes(staticSpec(keys(12)), staticSpec(['x', ...keys(11)]))).message).toBe(
      `the new spec changes the partitions of 'a' (static keys k0, k1, k2, k3, k4 and 7 more → x, k0, k1, k2, k3 and 7 more: adds x; drops k11): ${way}`,
    );
    expect(thrownBackfillError(() => changedNodes(staticSpec(['a1', 'b1']), staticSpec(['b1', 'a1']))).message).toBe(
      `the new spec changes the partitions of 'a' (static keys a1, b1 → b1, a1: the same keys in another order): ${way}`,
    );
    // A spec sent by hand may hold anything as partitions: shown as sent.
    const sent = spec();
    (sent.nodes[0] as { partitions: unknown }).partitions = 'all of them';
    expect(thrownBackfillError(() => changedNodes(spec(), sent)).message).toBe(
      `the new spec changes the partitions of 'a' (day partitions 2024-01-01 to 2024-01-10 → "all of them"): ${way}`,
    );
  });

  for (const [what, edit, message] of refused) {
    it(`refuses ${what}, naming the difference and the way out`, () => {
      const error = thrownBackfillError(() => changedNodes(spec(), spec(edit)));
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/start a new backfill/);
    });
  }
});

describe('parseResolvedSpec: a node sent without its settings', () => {
  it('is refused, naming the field, rather than filled with defaults (a default task queue may have no worker)', () => {
    for (const field of ['taskQueue', 'retry', 'timeout', 'concurrency']) {
      const sent = structuredClone(spec()) as unknown as { nodes: Array<Record<string, unknown>> };
      delete sent.nodes[0]![field];
      const error = thrownBackfillError(() => parseResolvedSpec(sent));
      expect(error.code, field).toBe('invalid_spec');
      expect(error.message, field).toContain(`nodes[0].${field}`);
    }
    expect(parseResolvedSpec(structuredClone(spec())).nodes[0]!.taskQueue).toBe(spec().nodes[0]!.taskQueue);
  });
});

describe('parseResolvedSpec: the key columns and adopt of a node, as a message brings them', () => {
  it('takes every field resolveSpec gives a node: adopt too', () => {
    const adopting = spec((s) => void (s.nodes[0]!.adopt = true));
    expect(parseResolvedSpec(structuredClone(adopting)).nodes[0]!.adopt).toBe(true);
  });

  it('keeps a node\'s key, and counts a change of key as a change of the node', () => {
    const keyed = spec((s) => void (s.nodes[0]!.key = ['x']));
    expect(parseResolvedSpec(structuredClone(keyed)).nodes[0]!.key).toEqual(['x']);
    expect(changedNodes(spec(), keyed)).toEqual(['a']);
  });

  it('refuses a key that is not a list of distinct column names, naming the field', () => {
    for (const [key, message] of [
      ['x', /nodes\[0\]\.key must be a list of column names/],
      [[], /nodes\[0\]\.key needs at least one column/],
      [['x', 'x'], /nodes\[0\]\.key\[1\] 'x' is listed twice/],
      [['__version'], /nodes\[0\]\.key\[0\] starts with __/],
    ] as const) {
      const sent = structuredClone(spec()) as unknown as { nodes: Array<Record<string, unknown>> };
      sent.nodes[0]!.key = key;
      const error = thrownBackfillError(() => parseResolvedSpec(sent));
      expect(error.code).toBe('invalid_spec');
      expect(error.message).toMatch(message);
    }
  });
});
