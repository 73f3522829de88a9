import { describe, expect, it } from 'vitest';
import { queuedOf, queuedPartitions, withQueued, type NodeActivity } from '../../client/queued.ts';
import { PENDING_ACTIVITY_STATE_SCHEDULED } from '../../client/status-wire.ts';
import { expandPlan } from '../../core/plan.ts';
import type { NodeProgress, Progress } from '../../core/protocol.ts';
import { resolveSpec } from '../../core/spec.ts';

const STARTED = 2;
const plan = expandPlan(
  resolveSpec({
    name: 'queued-test',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    nodes: [
      { id: 'days', transform: 'noop' },
      { id: 'keys', transform: 'noop', partitions: { keys: ['a..b', 'c', 'd'] } },
    ],
  }),
);
const days = plan.byId.get('days')!.partitions;
const keys = plan.byId.get('keys')!.partitions;
const run = (activityId: string, state: number): NodeActivity => ({ activityId, activityType: { name: 'runPartitions' }, state });

function node(id: string, running: number): NodeProgress {
  return { id, total: 10, done: 0, running, failed: 0, blocked: 0, pending: 10 - running, rate: null, concurrency: 4, throttles: 0, throughput: null, etaSeconds: null, failures: [] };
}
function progress(nodes: NodeProgress[]): Progress {
  const sum = (pick: (n: NodeProgress) => number) => nodes.reduce((s, n) => s + pick(n), 0);
  return {
    backfillId: 'b1', name: 'queued-test', state: 'running', paused: false, rate: null, concurrency: null,
    total: sum((n) => n.total), done: 0, running: sum((n) => n.running), failed: 0, blocked: 0, pending: sum((n) => n.pending),
    throughput: null, etaSeconds: null, runs: 1, nodes,
  };
}

describe('queued partitions: in flight, their activity scheduled and not started on a worker', () => {
  it('counts the scheduled runPartitions activities of the node, not the started ones nor other activities', () => {
    const pending = [
      run('days/2024-01-01', PENDING_ACTIVITY_STATE_SCHEDULED),
      run('days/2024-01-02', STARTED),
      run('days/2024-01-03', PENDING_ACTIVITY_STATE_SCHEDULED),
      { activityId: '7', activityType: { name: 'fetchNodeOrders' }, state: PENDING_ACTIVITY_STATE_SCHEDULED },
    ];
    expect(queuedPartitions('days', pending)).toBe(2);
    expect(queuedPartitions('days', pending.slice(1, 2))).toBe(0);
  });

  it('a batch counts its partitions from first to last with the node keys; one without them', () => {
    const batch = [run('days/2024-01-02..2024-01-05', PENDING_ACTIVITY_STATE_SCHEDULED)];
    expect(queuedPartitions('days', batch, days)).toBe(4);
    expect(queuedPartitions('days', batch)).toBe(1);
    // A static key may hold '..' itself: the split whose ends are both keys.
    expect(queuedPartitions('keys', [run('keys/a..b', PENDING_ACTIVITY_STATE_SCHEDULED)], keys)).toBe(1);
    expect(queuedPartitions('keys', [run('keys/a..b..d', PENDING_ACTIVITY_STATE_SCHEDULED)], keys)).toBe(3);
  });

  it('leaves them out of running, per node (at most what it runs) and overall; the counts still add up', () => {
    const p = withQueued(progress([node('days', 5), node('keys', 2)]), new Map([['days', 3], ['keys', 9]]));
    expect(p.nodes.map((n) => [n.id, n.running, n.queued])).toEqual([['days', 2, 3], ['keys', 0, 2]]);
    expect([p.running, p.queued]).toEqual([2, 5]);
    for (const n of p.nodes) expect(n.done + n.running + (n.queued ?? 0) + n.failed + n.blocked + n.pending).toBe(n.total);
    // None known: every node says so.
    const none = withQueued(progress([node('days', 5)]), new Map());
    expect([none.running, none.queued, none.nodes[0]!.running, none.nodes[0]!.queued]).toEqual([5, 0, 5, 0]);
  });

  it('describes only the nodes with partitions in flight, reads the keys only for a batch, and leaves a node it cannot describe as it is', async () => {
    const described: string[] = [];
    const keysRead: string[] = [];
    const pending: Record<string, NodeActivity[]> = {
      'backfill/b1/days': [run('days/2024-01-01..2024-01-03', PENDING_ACTIVITY_STATE_SCHEDULED), run('days/2024-01-04', STARTED)],
    };
    const counts = await queuedOf('b1', progress([node('days', 4), node('keys', 1), node('idle', 0)]), {
      pendingActivities: async (id) => {
        described.push(id);
        if (!(id in pending)) throw new Error('not allowed');
        return pending[id];
      },
      partitions: async (id) => (keysRead.push(id), plan.byId.get(id)!.partitions),
    });
    expect(described.sort()).toEqual(['backfill/b1/days', 'backfill/b1/keys']);
    expect(keysRead).toEqual(['days']);
    expect([...counts]).toEqual([['days', 3]]);
  });
});
