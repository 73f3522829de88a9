/** The workflow's own refusal when another backfill holds the datasets: its advice to wait says when a wait ends. */
import { describe, expect, it, vi } from 'vitest';
import type { LeaseOutcome } from '../../activities/warehouse/types.ts';

const outcome: LeaseOutcome = { acquired: false, holders: [{ node: 'sessions', backfillId: 'first', runKey: 'r0' }] };
vi.mock('@temporalio/workflow', async (original) => ({
  ...(await original<typeof import('@temporalio/workflow')>()),
  patched: () => true,
  proxyActivities: () => ({ warehouseIdentity: async () => ({ id: 'w1', location: 'warehouse.db' }), acquireDatasets: async () => outcome }),
}));
const { BackfillSession } = await import('../../workflows/backfill-session.ts');

describe('a backfill whose datasets another backfill holds', () => {
  it("fails saying that a staged backfill or a canary ends only once decided, not just 'wait for it'", async () => {
    const context = { backfillId: 'second', runKey: 'r1', startedAt: 0, range: {}, taskQueue: 'q', nodes: () => [], name: 'second' };
    const session = new BackfillSession(context as unknown as ConstructorParameters<typeof BackfillSession>[0], undefined, true);
    const refused = await session.begin().catch((e: unknown) => e as Error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toBe(
      "backfill 'second' would write datasets that another backfill writes in warehouse warehouse.db (sessions by backfill 'first'): one writer per dataset. " +
        "Wait for it to end ('backfill wait first'; a staged backfill or a canary ends only once published, approved or discarded: 'backfill status first' says which) or cancel it, then start this one again",
    );
  });
});
