/** What `backfill retry-failed` prints: how many partitions it sent back, in the running backfill or in a new run. */
import { describe, expect, it } from 'vitest';
import { limitsLine } from '../../client/commands/resume.ts';
import { renderRetried } from '../../client/commands/retry-failed.ts';
import { RangeSet } from '../../core/ranges.ts';
import type { ReadinessJSON } from '../../core/readiness.ts';
import { nothingToRetryOn } from '../../core/retry-failed.ts';
import { fakeBackfillClient } from './fake-backfill-client.ts';

describe('retry-failed output', () => {
  it('counts one failed partition in the singular, several in the plural', () => {
    expect(renderRetried('s2', { retried: 1, changed: [], resumed: { uiUrl: 'http://ui/s2' } })).toBe('s2 resumed in a new run to retry 1 failed partition\n  web UI: http://ui/s2');
    expect(renderRetried('s2', { retried: 28, changed: [], resumed: null })).toBe('s2: retrying 28 failed partitions');
    expect(renderRetried('s2', { retried: 1, changed: [], resumed: null })).toBe('s2: retrying 1 failed partition');
  });

  it("in a new run, counts the partitions blocked behind the failures too, in the audit entry's terms", () => {
    expect(renderRetried('s2', { retried: 28, blocked: 56, changed: [], resumed: { uiUrl: 'http://ui/s2' } })).toBe('s2 resumed in a new run to retry 28 failed partitions and the 56 blocked behind them\n  web UI: http://ui/s2');
    expect(renderRetried('s2', { retried: 1, blocked: 2, changed: [], resumed: { uiUrl: 'u' } })).toMatch(/^s2 resumed in a new run to retry 1 failed partition and the 2 blocked behind it\n/);
    expect(renderRetried('s2', { retried: 3, blocked: 0, changed: [], resumed: { uiUrl: 'u' } })).toMatch(/^s2 resumed in a new run to retry 3 failed partitions\n/);
  });

  it('names the limits a new run was given (--rate, --concurrency), and none it was not', () => {
    expect(renderRetried('s2', { retried: 3, changed: [], resumed: { uiUrl: 'u' } }, { rate: 5, concurrency: 2 })).toBe("s2 resumed in a new run to retry 3 failed partitions\n  new run's limits: rate 5/s, concurrency 2\n  web UI: u");
    expect(limitsLine({ rate: null })).toBe("\n  new run's limits: rate unlimited");
    expect(limitsLine({ concurrency: null })).toBe("\n  new run's limits: concurrency unlimited");
    expect(limitsLine({})).toBe('');
  });
});

/** Readiness whose nodes have these failed partitions (by index). */
const failing = (failed: Record<string, number[]>): ReadinessJSON =>
  Object.fromEntries(Object.entries(failed).map(([node, partitions]) => [node, { done: '', failed: RangeSet.of(...partitions.map((p): [number, number] => [p, p + 1])).toJSON() }]));

describe('retry-failed --node of an ended backfill with nothing to retry on that node', () => {
  it('is refused, naming the nodes whose failures there are, and how to retry them', () => {
    const readiness = failing({ events: [0, 3], daily: [] });
    expect(nothingToRetryOn('f-2', 'daily', readiness)).toBe(
      "node 'daily' of backfill 'f-2' has no failed partitions: there is nothing to retry (failed partitions: events 2; retry them with 'backfill retry-failed f-2 --node events', or every node's without --node)",
    );
    expect(nothingToRetryOn('f-2', 'x', failing({ a: [1], b: [2, 3, 4], x: [] }))).toContain("(failed partitions: a 1, b 3; retry them with 'backfill retry-failed f-2 --node <node>'");
    expect(nothingToRetryOn('c-1', 'daily', failing({ events: [], daily: [] }))).toBe("node 'daily' of backfill 'c-1' has no failed partitions: there is nothing to retry (no node of it has any)");
  });

  it('is not refused for a node with failures, nor for a node the backfill does not have (refused later as unknown)', () => {
    expect(nothingToRetryOn('f-2', 'events', failing({ events: [0], daily: [] }))).toBeNull();
    expect(nothingToRetryOn('f-2', 'dayly', failing({ events: [0], daily: [] }))).toBeNull();
  });

  it('starts no new run', async () => {
    const readiness = failing({ events: [0, 3], daily: [] });
    const handle = {
      describe: async () => ({ type: 'backfillWorkflow', status: { name: 'COMPLETED' }, runId: 'r1', taskQueue: 'q', startTime: new Date() }),
      result: async () => ({ state: 'completed_with_failures', progress: { state: 'completed_with_failures', nodes: [] }, carry: { readiness } }),
    };
    // No start is possible: the fake client has nothing to start a workflow with.
    const client = fakeBackfillClient({ client: { workflow: { getHandle: () => handle } } });
    await expect(client.retryFailed('f-2', 'daily')).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('there is nothing to retry') });
  });
});
