/** The rollback's summary arithmetic, its id and its human output; the workflow itself runs in test/integration/rollback.test.ts. */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { rollbackId } from '../../client/backfill-client.ts';
import { renderDownstream, renderRestores, renderRollback } from '../../client/render-rollback.ts';
import { PREVIEW_ROLLBACK_ID, previewRollback } from '../../client/rollback-preview.ts';
import type { Change, ChangesOptions, ChangesPage } from '../../activities/warehouse/types.ts';
import {
  MAX_LEFT_ALONE_EXAMPLES,
  UNPUBLISHED,
  addBatch,
  addOutcome,
  emptyBatch,
  emptySummary,
  restoreTarget,
  rollbackWorkflowId,
  versionStanding,
  type RollbackBatchResult,
  type VersionLink,
} from '../../core/rollback.ts';
import { rolledBackText, rolledBackVersions } from '../../client/rolled-back-versions.ts';
import { fakeBackfillClient } from './fake-backfill-client.ts';

type Status = 'restored' | 'removed' | 'already_restored' | 'changed_since';
const outcome = (partition: string, status: Status, found: number | null = 1, foundBackfillId: string | null = 'bf-1', forced = false) => ({
  node: 'orders',
  partition,
  status,
  found,
  foundBackfillId,
  forced,
});

describe('rollback summaries', () => {
  it('count each outcome, and who changed the partitions left alone', () => {
    let batch = emptyBatch();
    batch = addOutcome(batch, outcome('a', 'restored', 2, 'bf-2'), 2);
    batch = addOutcome(batch, outcome('b', 'removed', 1, 'bf-2'), 1);
    batch = addOutcome(batch, outcome('c', 'already_restored'), 2);
    batch = addOutcome(batch, outcome('d', 'changed_since', 3, 'bf-3'), 2);
    batch = addOutcome(batch, outcome('e', 'changed_since', null, null), 2);
    batch = addOutcome(batch, outcome('f', 'restored', 3, 'bf-3', true), 2);
    expect(batch).toEqual({
      restored: 2,
      removed: 1,
      alreadyRestored: 1,
      leftAlone: 2,
      forced: 1,
      undone: 0,
      changedBy: { 'bf-3': 1, [UNPUBLISHED]: 1 },
      leftAloneExamples: [
        { node: 'orders', partition: 'd', version: 2, currentVersion: 3, changedBy: 'bf-3' },
        { node: 'orders', partition: 'e', version: 2, currentVersion: null, changedBy: null },
      ],
      next: null,
    });
  });

  it('count the partitions other backfills\' rollbacks undid, per rollback, also over results without the count', () => {
    const by = { rollbackId: 'bf-6/rollback-1', backfillId: 'bf-6', forced: true };
    const undone = (partition: string) => ({ ...outcome(partition, 'restored'), status: 'undone' as const, undoneBy: by });
    const batch = addOutcome(addOutcome(emptyBatch(), undone('a'), 2), undone('b'), 2);
    expect(batch).toMatchObject({ undone: 2, restored: 0, alreadyRestored: 0, leftAlone: 0, undoneBy: [{ ...by, partitions: 2 }] });
    // A summary carried from a run before `undone` was counted has none: the sum is still a number.
    const { undone: _gone, ...older } = emptySummary({ backfillId: 'bf-4', rollbackId: 'rb', force: false });
    const summary = addBatch(addBatch(older as ReturnType<typeof emptySummary>, 'raw', batch), 'raw', batch);
    expect(summary).toMatchObject({ undone: 4, nodes: [{ node: 'raw', undone: 4 }], undoneBy: [{ ...by, partitions: 4 }] });
  });

  it("tells a version built on from one a rollback took the pointer off, and names the newest such rollback", () => {
    // 1 ← 2 (the backfill's) ← 3; 4 was published over 1 after a rollback moved the pointer from 3 to 1.
    const links = new Map([[2, { previousVersion: 1 }], [3, { previousVersion: 2 }], [4, { previousVersion: 1 }]]);
    const move = { rollbackId: 'rb-a', backfillId: 'bf-a', fromVersion: 3, toVersion: 1, forced: true, at: '2024-01-01T00:00:00Z' };
    expect(versionStanding(2, 2, links, [])).toEqual({ onTop: false, undoneBy: null });
    expect(versionStanding(2, 3, links, [])).toEqual({ onTop: true, undoneBy: null });
    expect(versionStanding(2, 4, links, [move])).toEqual({ onTop: false, undoneBy: { rollbackId: 'rb-a', backfillId: 'bf-a', forced: true } });
    expect(versionStanding(2, null, links, [{ ...move, toVersion: null }])).toMatchObject({ onTop: false, undoneBy: { rollbackId: 'rb-a' } });
    // A move from an older version does not undo version 2.
    expect(versionStanding(2, 1, links, [{ ...move, fromVersion: 1, toVersion: null }])).toEqual({ onTop: false, undoneBy: null });
  });

  it('add batches up per node and in total, keeping at most a hundred examples', () => {
    const leftAlone = (from: number, n: number): RollbackBatchResult =>
      Array.from({ length: n }, (_, i) => outcome(`p${from + i}`, 'changed_since', 3, 'bf-3')).reduce((b, o) => addOutcome(b, o, 2), emptyBatch());
    let summary = emptySummary({ backfillId: 'bf-2', rollbackId: 'rb', force: false });
    summary = addBatch(summary, 'daily', leftAlone(0, 80));
    summary = addBatch(summary, 'daily', { ...emptyBatch(), restored: 5 });
    summary = addBatch(summary, 'orders', leftAlone(80, 80));
    summary = addBatch(summary, 'empty', emptyBatch());
    expect(summary).toMatchObject({ restored: 5, leftAlone: 160, changedBy: { 'bf-3': 160 }, runs: 1 });
    expect(summary.nodes.map((n) => [n.node, n.restored, n.leftAlone])).toEqual([
      ['daily', 5, 80],
      ['orders', 0, 80],
      ['empty', 0, 0],
    ]);
    expect(summary.leftAloneExamples).toHaveLength(MAX_LEFT_ALONE_EXAMPLES);
    expect(summary.leftAloneExamples[99]!.partition).toBe('p99');
  });
});

describe('rollback ids', () => {
  it('name the workflow after the backfill, and each rollback after the backfill and the time', () => {
    expect(rollbackWorkflowId('shop-2024')).toBe('backfill/shop-2024/rollback');
    const id = rollbackId('shop-2024', new Date('2024-03-01T05:06:07.890Z'));
    expect(id).toMatch(/^shop-2024\/rollback-20240301-050607Z-[0-9a-f]{6}$/);
    expect(rollbackId('x')).not.toBe(rollbackId('x'));
  });

  it("refuse an id no backfill has (one with a '/') before asking the server (unknown to it, it would start a rollback that looks for it in the ledger); a hand-made start may have run under another id the client would not start", async () => {
    // No connection: any call to the server would fail otherwise than with the refusal.
    const client = fakeBackfillClient();
    await expect(client.startRollback('backfill/shop-2024')).rejects.toMatchObject({
      code: 'invalid_argument',
      message: "'backfill/shop-2024' is not a backfill id (none holds a '/'): give the backfill's id, 'shop-2024', without the workflow id's 'backfill/'",
    });
    await expect(client.startRollback('shop-2024/orders')).rejects.toMatchObject({ code: 'invalid_argument', message: "'shop-2024/orders' is not a backfill id (none holds a '/')" });
  });
});

describe('renderRollback', () => {
  const base = { ...emptySummary({ backfillId: 'bf-2', rollbackId: 'rb-1', force: false }) };

  it('says what was restored and removed, per node', () => {
    const text = stripVTControlCharacters(renderRollback({ ...base, restored: 12, removed: 1, nodes: [{ node: 'daily', restored: 12, removed: 1, alreadyRestored: 0, leftAlone: 0, forced: 0, undone: 0 }] }));
    expect(text).toContain('rolled back bf-2 (rollback rb-1)');
    expect(text).toMatch(/restored: +12 partitions to their version before bf-2 \(checksums verified\)/);
    expect(text).toMatch(/removed: +1 partition that bf-2 had created/);
    expect(text).toMatch(/daily\W+12\W+1\W+0\W+0/);
    expect(text).not.toMatch(/left alone:/);
  });

  it('names the partitions left alone, who changed them, and the way to restore them anyway', () => {
    const text = stripVTControlCharacters(
      renderRollback({
        ...base,
        leftAlone: 2,
        changedBy: { 'bf-3': 1, [UNPUBLISHED]: 1 },
        leftAloneExamples: [
          { node: 'daily', partition: '2024-01-02', version: 2, currentVersion: 3, changedBy: 'bf-3' },
          { node: 'daily', partition: '2024-01-03', version: 2, currentVersion: null, changedBy: null },
        ],
      }),
    );
    expect(text).toMatch(/left alone: +2 partitions changed since: 1 by bf-3, 1 unpublished$/m);
    expect(text).toContain('daily 2024-01-02: bf-2 published version 2, now version 3 by bf-3');
    expect(text).toContain('daily 2024-01-03: bf-2 published version 2, now none by –');
    expect(text).toContain("run 'backfill rollback bf-2 --force' to restore them, undoing those later changes");
  });

  it('says only what happened: a rollback that only removes says nothing of restoring', () => {
    const text = stripVTControlCharacters(renderRollback({ ...base, removed: 3 }));
    expect(text).toMatch(/removed: +3 partitions that bf-2 had created/);
    expect(text).not.toMatch(/restored:|checksums verified/);
  });

  it('names the forced rollback of another backfill that undid partitions of this one, in the run and in a dry run', () => {
    const undoneBy = [{ rollbackId: 'b6/rollback-1', backfillId: 'b6', forced: true, partitions: 50 }];
    const summary = { ...base, undone: 50, undoneBy, nodes: [{ node: 'raw', restored: 0, removed: 0, alreadyRestored: 0, leftAlone: 0, forced: 0, undone: 50 }] };
    const text = stripVTControlCharacters(renderRollback(summary));
    expect(text).toContain('undone before:    50 partitions of bf-2 were unpublished already, 50 by the forced rollback of b6 (b6/rollback-1): left as they are');
    expect(text).toMatch(/undone before/);
    const dry = stripVTControlCharacters(renderRollback(summary, { historyGone: false, fromLedger: [] }));
    expect(dry).toContain("nothing to do: nothing of bf-2 is published: other backfills' rollbacks undid all of it");
    expect(dry).toContain('50 by the forced rollback of b6 (b6/rollback-1)');
  });

  it('says in its headline when it rolled back only part of the backfill, or nothing of it', () => {
    const headline = (counts: Partial<typeof base>) => stripVTControlCharacters(renderRollback({ ...base, ...counts })).split('\n')[0];
    expect(headline({ leftAlone: 147 })).toBe('rolled back nothing of bf-2: all 147 partitions left alone (rollback rb-1)');
    expect(headline({ restored: 3, leftAlone: 1 })).toBe('rolled back bf-2 in part (1 partition left alone) (rollback rb-1)');
    expect(headline({ restored: 3, leftAlone: 1, forced: 1, force: true })).toBe('rolled back bf-2 in part (1 partition left alone) (rollback rb-1)');
    expect(headline({ alreadyRestored: 4 })).toBe('bf-2 was rolled back already; nothing of it is published (rollback rb-1)');
    expect(headline({ undone: 2 })).toBe("nothing of bf-2 is published: other backfills' rollbacks undid all of it (rollback rb-1)");
    expect(headline({})).toBe('nothing to roll back: bf-2 published nothing (rollback rb-1)');
    expect(headline({ removed: 2 })).toBe('rolled back bf-2 (rollback rb-1)');
  });
});

describe('previewRollback', () => {
  const change = (node: string, partition: string, version: number, previousVersion: number | null, currentVersion: number | null, currentBackfillId: string | null): Change => ({
    node,
    partition,
    version,
    checksum: 'c',
    previousVersion,
    previousChecksum: previousVersion === null ? null : 'p',
    currentVersion,
    currentBackfillId,
  });
  const changes = [
    change('daily', '2024-01-01', 2, 1, 2, 'bf-2'),
    change('daily', '2024-01-02', 2, null, 2, 'bf-2'),
    change('daily', '2024-01-03', 2, 1, 1, 'bf-1'),
    { ...change('daily', '2024-01-04', 2, 1, 3, 'bf-3'), onTop: true },
    change('gone', 'k', 1, null, 1, 'bf-2'),
    change('weekly', '2024-W01', 2, 1, 2, 'bf-2'),
  ];
  /** The ledger's pages, two changes at a time, as changesBy returns them. */
  const warehouse = {
    location: 'test.db',
    calls: 0,
    /** Lineage: weekly reads daily. */
    async ledgerVersions(node: string) {
      return node === 'weekly' ? [{ inputs: [{ node: 'daily' }] }] : [{ inputs: [] }];
    },
    async changesBy(backfillId: string, options: ChangesOptions = {}): Promise<ChangesPage> {
      this.calls++;
      if (backfillId !== 'bf-2') return { changes: [], next: null };
      const after = options.after;
      const from = after ? changes.findIndex((c) => c.node === after.node && c.partition === after.partition) + 1 : 0;
      const page = changes.slice(from, from + 2);
      const last = page[page.length - 1];
      return { changes: page, next: from + 2 < changes.length && last ? { node: last.node, partition: last.partition } : null };
    },
  };

  it('decides each partition as a restore would, per node in the rollback order, walking too the nodes only the ledger names', async () => {
    warehouse.calls = 0;
    const preview = await previewRollback(warehouse, 'bf-2', { order: ['weekly', 'daily', 'idle'], historyGone: false }, false);
    // Three pages for the ledger's nodes, three for the decisions.
    expect(warehouse.calls).toBe(6);
    expect(preview).toMatchObject({ dryRun: true, rollbackId: PREVIEW_ROLLBACK_ID, restored: 2, removed: 2, alreadyRestored: 1, leftAlone: 1, forced: 0, changedBy: { 'bf-3': 1 }, historyGone: false, fromLedger: ['gone'] });
    expect(preview.nodes.map((n) => [n.node, n.restored, n.removed, n.alreadyRestored, n.leftAlone])).toEqual([
      ['gone', 0, 1, 0, 0],
      ['weekly', 1, 0, 0, 0],
      ['daily', 1, 1, 1, 1],
      ['idle', 0, 0, 0, 0],
    ]);
    expect(preview.leftAloneExamples).toEqual([{ node: 'daily', partition: '2024-01-04', version: 2, currentVersion: 3, changedBy: 'bf-3' }]);
  });

  it('says the rollback would be refused now while another backfill leases a dataset it restores in, and why', async () => {
    const leased = { ...warehouse, leaseHolders: async (nodes: readonly string[]) => [{ node: 'daily', backfillId: 'p4', runKey: 'r4' }, { node: 'bf-2-own', backfillId: 'bf-2', runKey: 'r2' }].filter((h) => nodes.includes(h.node)) };
    const preview = await previewRollback(leased, 'bf-2', { order: ['weekly', 'daily'], historyGone: false }, false);
    expect(preview.refusedBy).toEqual([{ node: 'daily', backfillId: 'p4', runKey: 'r4' }]);
    const text = stripVTControlCharacters(renderRollback(preview, preview));
    expect(text).toContain("would be refused now: dataset daily is leased to backfill 'p4' (run r4), which is running and writes it, so 'bf-2' cannot be rolled back there now. Wait for 'p4' to end ('backfill wait p4')");
    expect(text).not.toContain("to do it");
    expect((await previewRollback(warehouse, 'bf-2', { order: ['weekly', 'daily'], historyGone: false }, false)).refusedBy).toEqual([]);
  });

  it('with force, counts what it would restore over a later backfill', async () => {
    expect(await previewRollback(warehouse, 'bf-2', { order: ['weekly', 'daily', 'gone'], historyGone: false }, true)).toMatchObject({ restored: 3, forced: 1, leftAlone: 0, force: true, fromLedger: [] });
  });

  it("with the history gone, walks the ledger's nodes downstream first by their lineage", async () => {
    const preview = await previewRollback(warehouse, 'bf-2', { order: [], historyGone: true }, false);
    expect(preview.nodes.map((n) => n.node)).toEqual(['weekly', 'gone', 'daily']);
    expect(preview).toMatchObject({ historyGone: true, fromLedger: ['weekly', 'gone', 'daily'], restored: 2, removed: 2 });
  });

  it('refuses (not_found) a backfill neither the server nor the ledger knows, naming the warehouse', async () => {
    const refused = await previewRollback(warehouse, 'bf-nobody', { order: [], historyGone: true }, false).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'not_found' });
    expect((refused as Error).message).toMatch(/known neither to the server .* nor to the ledger of test.db/);
  });

  it('renders as a preview, naming the nodes only the ledger names', () => {
    const summary = { ...emptySummary({ backfillId: 'bf-2', rollbackId: PREVIEW_ROLLBACK_ID, force: false }), restored: 3, leftAlone: 1, changedBy: { 'bf-3': 1 } };
    const text = stripVTControlCharacters(renderRollback(summary, { historyGone: false, fromLedger: ['gone'] }));
    expect(text).toContain('would roll back bf-2 (dry run: nothing was started or changed)');
    expect(text).toMatch(/would restore: +3 partitions to their version before bf-2/);
    // One backfill changed them all: the count is said once.
    expect(text).toMatch(/would leave alone: 1 partition changed since by bf-3$/m);
    expect(text).toMatch(/from the ledger: +gone: no run of bf-2 that the server still keeps names that node; .* the rollback walks it in the order of the ledger's lineage/);
    const gone = stripVTControlCharacters(renderRollback(summary, { historyGone: true, fromLedger: ['gone'] }));
    expect(gone).toMatch(/the server no longer keeps the history of bf-2 .*a worker with a policy judges the rollback/);
    expect(text).toContain("run 'backfill rollback bf-2' to do it");
    expect(text).not.toContain('rolled back');
  });

  it('advises the rollback only when it would restore or remove something', () => {
    const empty = emptySummary({ backfillId: 'bf-2', rollbackId: PREVIEW_ROLLBACK_ID, force: false });
    const dryRun = (counts: Partial<typeof empty>) => stripVTControlCharacters(renderRollback({ ...empty, ...counts }, { historyGone: false, fromLedger: [] }));
    // All left alone: only --force would do something.
    const leftAlone = dryRun({ leftAlone: 128, changedBy: { 'bf-3': 128 } });
    expect(leftAlone).not.toContain('to do it');
    expect(leftAlone).toContain("run 'backfill rollback bf-2 --force' to restore them, undoing those later changes");
    expect(dryRun({})).not.toContain('to do it');
    expect(dryRun({})).toContain('  nothing to do: bf-2 published nothing');
    expect(dryRun({ alreadyRestored: 4 })).toContain('  nothing to do: bf-2 was rolled back already');
    expect(dryRun({ removed: 1, leftAlone: 1, changedBy: { 'bf-3': 1 } })).toContain("run 'backfill rollback bf-2 --force' to restore them too");
    expect(dryRun({ restored: 2, forced: 2, force: true })).toContain("run 'backfill rollback bf-2 --force' to do it");
  });
});

describe('renderRestores', () => {
  it('lists the restores of a partition, oldest first, and nothing when there were none', () => {
    expect(renderRestores([])).toEqual([]);
    const at = '2024-03-01T05:06:07.000Z';
    expect(
      renderRestores([
        { rollbackId: 'rb-1', backfillId: 'bf-2', node: 'daily', partition: 'k', fromVersion: 2, toVersion: 1, forced: false, at },
        { rollbackId: 'rb-2', backfillId: 'bf-1', node: 'daily', partition: 'k', fromVersion: 3, toVersion: null, forced: true, at },
      ]),
    ).toEqual([
      'rollbacks:',
      `  ${at}  v2 → v1  rolling back bf-2 (rb-1)`,
      `  ${at}  v3 → none  rolling back bf-1 (rb-2), forced over a later backfill`,
    ]);
  });
});

describe('restoreTarget', () => {
  const link = (backfillId: string, previousVersion: number | null, rolledBack = false): VersionLink => ({ previousVersion, checksum: `c-${backfillId}`, backfillId, rolledBack });
  // v1 by x, v2 by a, v3 by b, v4 by c.
  const links = new Map([
    [1, link('x', null)],
    [2, link('a', 1)],
    [3, link('b', 2)],
    [4, link('c', 3)],
  ]);

  it('keeps a target whose backfill was not rolled back', () => {
    expect(restoreTarget('c', { version: 3, checksum: 'c-b' }, links)).toEqual({ version: 3, checksum: 'c-b' });
  });

  it('walks past versions rolled back since, and past the backfill\'s own, to the newest neither', () => {
    const rolled = new Map(links).set(3, link('b', 2, true)).set(2, link('a', 1, true));
    expect(restoreTarget('c', { version: 3, checksum: 'c-b' }, rolled)).toEqual({ version: 1, checksum: 'c-x' });
    expect(restoreTarget('a', { version: 3, checksum: 'c-b' }, new Map(links).set(3, link('b', 2, true)))).toEqual({ version: 1, checksum: 'c-x' });
  });

  it('ends at none when every version back to the first was rolled back (the partition is removed)', () => {
    const rolled = new Map([
      [1, link('x', null, true)],
      [2, link('a', 1, true)],
    ]);
    expect(restoreTarget('b', { version: 2, checksum: 'c-a' }, rolled)).toEqual({ version: null, checksum: null });
  });

  it('stops at a version it knows nothing of, and never loops', () => {
    expect(restoreTarget('c', { version: 9, checksum: 'c9' }, links)).toEqual({ version: 9, checksum: 'c9' });
    expect(restoreTarget('c', { version: 2, checksum: 'c2' }, new Map([[2, link('a', 2, true)]]))).toEqual({ version: 2, checksum: 'c2' });
  });
});

describe('rolledBackVersions', () => {
  const v = (version: number, previousVersion: number | null, current = false) => ({ version, previousVersion, status: 'published' as const, current });
  const move = { rollbackId: 'b6/rollback-1', backfillId: 'b6', node: 'clean', partition: 'k', fromVersion: 3, toVersion: 1, forced: false, at: '2024-01-01T00:00:00Z' };

  it('tells the versions a rollback took off from those only superseded, and names the rollback in lineage', () => {
    const rolledBack = rolledBackVersions([v(3, 2), v(2, 1), v(1, null, true)], [move]);
    expect([...rolledBack]).toEqual([
      [3, { rollbackId: 'b6/rollback-1', backfillId: 'b6', forced: false }],
      [2, { rollbackId: 'b6/rollback-1', backfillId: 'b6', forced: false }],
    ]);
    // Superseded by a later publish, a version is still under the current one: not rolled back.
    expect([...rolledBackVersions([v(2, 1, true), v(1, null)], [])]).toEqual([]);
    expect(rolledBackText({ rollbackId: 'b6/rollback-1', backfillId: 'b6', forced: true })).toBe('rolled back (b6/rollback-1, forced)');
  });
});

describe('renderDownstream', () => {
  it('says how many partitions of which dataset were computed from replaced versions, and how to recompute them', () => {
    const lines = renderDownstream([{ node: 't11_daily', partitions: 12, examples: ['2024-04-20', '2024-04-21', '2024-04-22'] }], false).map((l) => stripVTControlCharacters(l));
    expect(lines).toEqual([
      '  downstream:       12 partitions of t11_daily were computed from versions this rollback replaced (e.g. 2024-04-20, 2024-04-21, 2024-04-22); left as they are',
      "  recompute them: 'backfill plan <spec> --only-changed' lists them, 'backfill start <spec> --only-changed' runs them",
    ]);
    expect(renderDownstream([], true)).toEqual([]);
  });
});
