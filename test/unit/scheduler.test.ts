/** NodeScheduler: what a node workflow decides, tested without a server, the way Readiness is. */
import { describe, expect, it } from 'vitest';
import type { NodeSettings, PartitionResult } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { seededRandom } from '../../core/random.ts';
import { p95 } from '../../core/pacing.ts';
import { NodeScheduler, type Batch, type SchedulerOptions } from '../../core/scheduler.ts';

const settings = (over: Partial<NodeSettings> = {}): NodeSettings => ({ seq: 1, rate: null, burst: 1, concurrency: 4, paused: false, ...over });
const options = (over: Partial<SchedulerOptions> = {}): SchedulerOptions => ({ batchSize: 1, maxThrottles: 3, ...over });
const span = (start: number, end: number) => RangeSet.of([start, end]);
const result = (index: number, at = 1000): PartitionResult => ({ index, key: `k${index}`, version: 1, rowCount: 0, checksum: '', startedAt: at, finishedAt: at + 10 });
const indices = (batches: Batch[]) => batches.map((b) => b.indices);
const complete = (s: NodeScheduler, batch: Batch, at = 1000) => s.settle(batch.id, { kind: 'completed', finished: batch.indices.map((i) => result(i, at)) });

describe('NodeScheduler: dispatch', () => {
  it('starts ready partitions in order, up to the concurrency, one batch of batchSize each', () => {
    const s = new NodeScheduler(options({ batchSize: 2 }), settings({ concurrency: 3 }), span(0, 10));
    const batches = s.startable();
    expect(indices(batches)).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(s.startable()).toEqual([]);
    expect(s.running).toBe(6);
    expect(s.queued).toBe(4);
    complete(s, batches[1]!);
    expect(indices(s.startable())).toEqual([[6, 7]]);
  });

  it('starts nothing while paused, and everything waiting once resumed', () => {
    const s = new NodeScheduler(options(), settings({ paused: true }), span(0, 3));
    expect(s.startable()).toEqual([]);
    expect(s.tickMs()).toBeNull();
    expect(s.configure(settings({ seq: 2, paused: false }), 0)).toBe(true);
    expect(indices(s.startable())).toEqual([[0], [1], [2]]);
  });

  it('counts the time it was paused between its first start and its last finish, once a finish passes the pause', () => {
    const s = new NodeScheduler(options({ batchSize: 1 }), settings({ concurrency: 1 }), span(0, 4));
    let [batch] = s.startable();
    complete(s, batch!, 0); // 0 → 10
    s.configure(settings({ seq: 2, paused: true }), 20);
    s.configure(settings({ seq: 3, paused: false }), 3_620);
    expect(s.currentStats().pausedMs).toBeUndefined(); // the span (0 → 10) holds none of it yet
    // It goes on across continue-as-new.
    const t = new NodeScheduler(options({ batchSize: 1 }), settings({ seq: 3, concurrency: 1 }), undefined, s.toState());
    [batch] = t.startable();
    complete(t, batch!, 3_630); // 3,630 → 3,640
    expect(t.currentStats()).toMatchObject({ firstStartedAt: 0, lastFinishedAt: 3_640, pausedMs: 3_600 });
    expect(t.toState().pauses).toBeUndefined();
  });

  it('ignores settings older than the ones it has', () => {
    const s = new NodeScheduler(options(), settings({ seq: 5 }), span(0, 3));
    expect(s.configure(settings({ seq: 4, paused: true }), 0)).toBe(false);
    expect(s.paused).toBe(false);
  });

  it('paces starts with the token bucket, refilled by the time that passed', () => {
    // 2/s with a burst of 2: two at once, then one per half second.
    const s = new NodeScheduler(options(), settings({ rate: 2, burst: 2, concurrency: 100 }), span(0, 10));
    s.advance(0);
    expect(s.startable()).toHaveLength(2);
    expect(s.tickMs()).toBe(500);
    s.advance(400);
    expect(s.startable()).toHaveLength(0);
    s.advance(500);
    expect(s.startable()).toHaveLength(1);
    s.advance(1500);
    expect(s.startable()).toHaveLength(2);
  });

  it('a late pacing tick makes up for its lateness instead of losing tokens over the burst', () => {
    const late = new NodeScheduler(options(), settings({ rate: 10, burst: 10, concurrency: 100 }), span(0, 100));
    late.advance(0);
    expect(late.startable()).toHaveLength(10);
    late.advance(1500, 500); // a 500 ms tick that came a second late
    expect(late.startable()).toHaveLength(15);
  });

  it('needs a pacing tick only while it waits for tokens, or while throttled with work waiting', () => {
    const s = new NodeScheduler(options(), settings({ rate: 1, burst: 1 }), span(0, 1));
    s.advance(0);
    expect(s.tickMs()).toBeNull(); // full bucket
    s.startable();
    expect(s.tickMs()).toBe(500);
    s.advance(1000);
    expect(s.tickMs()).toBeNull();
    expect(new NodeScheduler(options(), settings(), span(0, 5)).tickMs()).toBeNull(); // unlimited
  });
});

describe('NodeScheduler: outcomes', () => {
  it('reports completions once, with counts and times, and clears them', () => {
    const s = new NodeScheduler(options(), settings(), span(0, 3));
    const [a, b] = s.startable();
    complete(s, a!, 100);
    complete(s, b!, 200);
    expect(s.hasResults).toBe(true);
    const report = s.takeReport();
    expect(RangeSet.fromJSON(report.done).toJSON()).toBe(span(0, 2).toJSON());
    expect(report.stats).toMatchObject({ completed: 2, firstStartedAt: 100, lastFinishedAt: 210, running: 1 });
    expect(s.hasNews).toBe(false);
    expect(RangeSet.fromJSON(s.takeReport().done).isEmpty).toBe(true);
  });

  it('is idle once nothing runs and nothing waits to run, carried partitions included (the node then reports at once)', () => {
    expect(new NodeScheduler(options(), settings(), new RangeSet()).idle).toBe(true);
    const s = new NodeScheduler(options(), settings({ concurrency: 1 }), span(0, 2));
    expect(s.idle).toBe(false);
    const [a] = s.startable();
    complete(s, a!);
    // One done, one waiting: not idle, though it has results.
    expect(s.hasResults).toBe(true);
    expect(s.idle).toBe(false);
    const [b] = s.startable();
    expect(s.idle).toBe(false);
    complete(s, b!);
    expect(s.idle).toBe(true);
    expect(s.hasResults).toBe(true);
    // Carried partitions wait to run too.
    const carried = new NodeScheduler(options(), settings(), new RangeSet(), { ...s.toState(), carried: span(5, 6).toJSON() });
    expect(carried.idle).toBe(false);
  });

  it('with reportRunning, partitions that start or end are news before any result; without it, only results are', () => {
    const s = new NodeScheduler(options({ reportRunning: true }), settings({ concurrency: 2 }), span(0, 3));
    expect(s.hasNews).toBe(false);
    const [a] = s.startable();
    expect(s.hasNews).toBe(true);
    expect(s.hasResults).toBe(false);
    expect(s.takeReport().stats.running).toBe(2);
    expect(s.hasNews).toBe(false);
    s.settle(a!.id, { kind: 'cancelled' });
    expect(s.hasNews).toBe(true); // one fewer running
    expect(s.takeReport().stats.running).toBe(1);
    expect(s.startable()).toHaveLength(1);
    expect(s.hasNews).toBe(true);

    const before = new NodeScheduler(options(), settings({ concurrency: 2 }), span(0, 3));
    before.startable();
    expect(before.hasNews).toBe(false);
  });

  it('a failed batch fails the partition that failed and runs its finished ones as done, the rest again', () => {
    const s = new NodeScheduler(options({ batchSize: 4 }), settings({ concurrency: 1 }), span(0, 8));
    const [batch] = s.startable();
    s.settle(batch!.id, { kind: 'failed', finished: [result(0)], failedIndex: 1, message: 'boom', type: 'SqlError' });
    const report = s.takeReport();
    expect([...RangeSet.fromJSON(report.done)]).toEqual([0]);
    expect(report.failures).toEqual([{ message: 'boom', type: 'SqlError', ranges: RangeSet.of([1, 2]).toJSON() }]);
    expect(indices(s.startable())).toEqual([[2, 3, 4, 5]]);
  });

  it('a failure without details fails the first partition of the batch', () => {
    const s = new NodeScheduler(options({ batchSize: 2 }), settings(), span(0, 2));
    const [batch] = s.startable();
    s.settle(batch!.id, { kind: 'failed', finished: [], failedIndex: null, message: 'timed out', type: 'Timeout' });
    expect(s.takeReport().failures[0]!.ranges).toBe(RangeSet.of([0, 1]).toJSON());
    expect(indices(s.startable())).toEqual([[1]]);
  });

  it('a cancelled batch goes back to the queue', () => {
    const s = new NodeScheduler(options(), settings({ concurrency: 1 }), span(0, 2));
    const [batch] = s.startable();
    s.settle(batch!.id, { kind: 'cancelled' });
    expect(indices(s.startable())).toEqual([[0]]);
    expect(s.hasResults).toBe(false);
  });

  it('a cancelled batch that committed some partitions first: those are done and reported, the rest go back to the queue', () => {
    const s = new NodeScheduler(options({ batchSize: 4 }), settings({ concurrency: 1 }), span(0, 4));
    const [batch] = s.startable();
    s.settle(batch!.id, { kind: 'cancelled', finished: [result(0), result(1)] });
    const report = s.takeReport();
    expect(report.done).toBe(RangeSet.of([0, 2]).toJSON());
    expect(report.stats.completed).toBe(2);
    expect(indices(s.startable())).toEqual([[2, 3]]);
  });

  it('an outcome of an unknown batch changes nothing', () => {
    const s = new NodeScheduler(options(), settings(), span(0, 2));
    s.settle(99, { kind: 'completed', finished: [result(0)] });
    expect(s.hasNews).toBe(false);
  });
});

describe('NodeScheduler: throttling', () => {
  it('halves the pace once per congestion event and requeues the throttled partition with its count', () => {
    const s = new NodeScheduler(options(), settings({ rate: 10, burst: 10, concurrency: 10 }), span(0, 20));
    s.advance(0);
    const batches = s.startable();
    expect(batches).toHaveLength(10);
    // Two throttles from batches started before the slow-down: one congestion event.
    s.settle(batches[0]!.id, { kind: 'completed', finished: [], throttled: { index: 0, message: 'slow down' } });
    s.settle(batches[1]!.id, { kind: 'completed', finished: [], throttled: { index: 1, message: 'slow down' } });
    expect(s.currentStats().rate).toBe(5);
    expect(s.currentStats().throttles).toBe(2);
    expect(s.tickMs()).toBeLessThanOrEqual(1000);
    s.advance(10_000);
    const again = s.startable();
    expect(again.map((b) => b.indices[0])).toContain(0);
    expect(again.find((b) => b.indices[0] === 0)!.throttled).toEqual([1]);
  });

  it('climbs back while calm, and lifts the slow-down once at the operator rate', () => {
    const s = new NodeScheduler(options(), settings({ rate: 10, burst: 10, concurrency: 10 }), span(0, 1000));
    s.advance(0);
    const [b] = s.startable();
    s.settle(b!.id, { kind: 'completed', finished: [], throttled: { index: 0, message: 'slow down' } });
    expect(s.currentStats().rate).toBe(5);
    s.advance(1000); // the tick during which it was throttled is not calm
    expect(s.currentStats().rate).toBe(5);
    s.advance(5000);
    expect(s.currentStats().rate).toBeGreaterThan(5);
    s.advance(60_000);
    expect(s.currentStats().rate).toBe(10);
  });

  it('fails a partition throttled more often than its budget, with a message naming the fix', () => {
    const s = new NodeScheduler(options({ maxThrottles: 2 }), settings({ concurrency: 1 }), span(0, 1));
    for (let i = 0; i < 3; i++) {
      const [b] = s.startable();
      expect(b!.indices).toEqual([0]);
      s.settle(b!.id, { kind: 'completed', finished: [], throttled: { index: 0, message: 'HTTP 429' } });
      s.advance((i + 1) * 60_000);
    }
    expect(s.startable()).toEqual([]);
    const [failure] = s.takeReport().failures;
    expect(failure!.type).toBe('ThrottleBudget');
    expect(failure!.message).toMatch(/throttled 3 times .*HTTP 429.*retry\.maxThrottles/);
  });
});

describe('NodeScheduler: partitions a completed batch did not account for', () => {
  const unaccounted = { maxAttempts: 3, taskQueue: 'etl' };
  const message = "the batch completed 3 times without a result for this partition: does a worker of another build poll task queue 'etl'? Stop it, then retry-failed";
  /** Starts the next batch and completes it with `finished` of its partitions and nothing else. */
  const silent = (s: NodeScheduler, more: { finished?: number[]; throttled?: number; deferred?: number } = {}) => {
    const [batch] = s.startable();
    const outcome = {
      kind: 'completed' as const,
      finished: (more.finished ?? []).map((i) => result(i)),
      ...(more.throttled !== undefined ? { throttled: { index: more.throttled, message: 'slow down' } } : {}),
      ...(more.deferred !== undefined ? { deferred: more.deferred } : {}),
    };
    return { batch: batch!, failed: s.settle(batch!.id, outcome) };
  };

  it('counts each as a failed attempt, runs it again, and fails it after retry.maxAttempts, naming the task queue', () => {
    const s = new NodeScheduler(options({ batchSize: 2, unaccounted }), settings({ concurrency: 1 }), span(0, 2));
    expect(silent(s)).toMatchObject({ batch: { indices: [0, 1] }, failed: 2 });
    expect(silent(s)).toMatchObject({ batch: { indices: [0, 1] }, failed: 2 });
    expect(s.takeReport().failures).toEqual([]);
    expect(silent(s).failed).toBe(2);
    expect(s.takeReport().failures).toEqual([{ message, type: 'NoResult', ranges: span(0, 2).toJSON() }]);
    expect(s.idle).toBe(true);
  });

  it('ran them again, uncounted, for ever without the option (runs from before the patch unaccounted-counts-as-attempt)', () => {
    const s = new NodeScheduler(options({ batchSize: 2 }), settings({ concurrency: 1 }), span(0, 2));
    for (let i = 0; i < 10; i++) expect(silent(s)).toMatchObject({ batch: { indices: [0, 1] }, failed: 0 });
    expect(s.takeReport().failures).toEqual([]);
    expect(s.idle).toBe(false);
  });

  it('counts none that the batch finished, was throttled on or after, or deferred', () => {
    const s = new NodeScheduler(options({ batchSize: 4, unaccounted: { ...unaccounted, maxAttempts: 1 } }), settings({ concurrency: 1 }), span(0, 4));
    // 0 finished, 1 unaccounted, 2 and 3 deferred (the run window closed before them).
    expect(silent(s, { finished: [0], deferred: 2 }).failed).toBe(1);
    expect(s.takeReport().failures).toEqual([{ message: message.replace('3 times', '1 time'), type: 'NoResult', ranges: span(1, 2).toJSON() }]);
    // 2 throttled, 3 after the throttle.
    expect(silent(s, { throttled: 2 })).toMatchObject({ batch: { indices: [2, 3] }, failed: 0 });
    expect(s.takeReport().failures).toEqual([]);
    expect(s.queued).toBe(2);
  });

  it('carries the counts across continue-as-new, and forgets them when the partition is done or has failed', () => {
    const s = new NodeScheduler(options({ batchSize: 2, unaccounted }), settings({ concurrency: 1 }), span(0, 2));
    silent(s);
    silent(s, { finished: [1] });
    expect(s.toState().unaccounted).toEqual({ 2: span(0, 1).toJSON() });
    const next = new NodeScheduler(options({ batchSize: 2, unaccounted }), settings({ concurrency: 1 }), undefined, s.toState());
    expect(silent(next)).toMatchObject({ batch: { indices: [0] }, failed: 1 });
    expect(next.takeReport().failures).toEqual([{ message, type: 'NoResult', ranges: span(0, 1).toJSON() }]);
    expect(next.toState().unaccounted).toBeUndefined();
    // retry-failed releases it again: three more attempts.
    next.release(span(0, 1));
    silent(next);
    silent(next);
    expect(next.takeReport().failures).toEqual([]);
    silent(next, { finished: [0] });
    expect(next.toState().unaccounted).toBeUndefined();
    expect(next.idle).toBe(true);
  });
});

describe('NodeScheduler: partitions a completed batch deferred', () => {
  const deferrals = { max: 4, backoffMs: 1000, taskQueue: 'etl' };
  /** Starts the next batch at `now` and completes it having deferred its last `deferred` (all by default). */
  const defer = (s: NodeScheduler, now: number, more: { deferred?: number; finished?: number[]; windowClosed?: boolean } = {}) => {
    s.advance(now);
    const [batch] = s.startable();
    if (!batch) return null;
    const outcome = {
      kind: 'completed' as const,
      finished: (more.finished ?? []).map((i) => result(i)),
      deferred: more.deferred ?? batch.indices.length,
      ...(more.windowClosed ? { windowClosed: true } : {}),
    };
    expect(s.settle(batch.id, outcome, now)).toBe(0);
    return batch;
  };

  it('runs them again at once after one deferral (a worker stopping in a deploy), costing no attempt', () => {
    const s = new NodeScheduler(options({ batchSize: 2, deferrals }), settings({ concurrency: 1 }), span(0, 2));
    expect(defer(s, 0)!.indices).toEqual([0, 1]);
    expect(s.tickMs()).toBeNull();
    expect(s.waitReason()).toBeNull();
    const [again] = s.startable();
    expect(again!.indices).toEqual([0, 1]);
    expect(s.takeReport().failures).toEqual([]);
  });

  it('backs off from the second deferral, doubling, and fails them after `max`, naming the task queue', () => {
    const s = new NodeScheduler(options({ batchSize: 2, deferrals }), settings({ concurrency: 1 }), span(0, 2));
    defer(s, 0);
    defer(s, 10);
    // The second deferral: nothing starts for a second.
    expect(s.tickMs()).toBe(1000);
    expect(s.waitReason()).toBe('deferred');
    expect(defer(s, 500)).toBeNull();
    expect(defer(s, 1010)).not.toBeNull();
    expect(s.tickMs()).toBe(2000);
    expect(defer(s, 3009)).toBeNull();
    expect(defer(s, 3010)).not.toBeNull();
    expect(s.tickMs()).toBe(4000);
    expect(s.takeReport().failures).toEqual([]);
    // The fifth deferral is one more than `max`: they fail, and nothing is left to run.
    expect(defer(s, 7010)).not.toBeNull();
    const [failure] = s.takeReport().failures;
    expect(failure).toMatchObject({ type: 'Deferred', ranges: span(0, 2).toJSON() });
    expect(failure!.message).toMatch(/completed 5 times saying it deferred .*task queue 'etl'.*retry-failed/);
    expect(s.idle).toBe(true);
  });

  it('counts none that a closed run window explains, nor those the batch finished', () => {
    const s = new NodeScheduler(options({ batchSize: 3, deferrals: { ...deferrals, max: 1 } }), settings({ concurrency: 1 }), span(0, 3));
    for (let i = 0; i < 5; i++) defer(s, i * 10, { windowClosed: true });
    expect(s.takeReport().failures).toEqual([]);
    expect(s.tickMs()).toBeNull();
    // 0 finished, 1 and 2 deferred: counted once each, under the bound of 1.
    defer(s, 100, { finished: [0], deferred: 2 });
    expect(s.takeReport()).toMatchObject({ done: span(0, 1).toJSON(), failures: [] });
    expect(s.queued).toBe(2);
  });

  it('carries the counts and the back-off across continue-as-new, and forgets a count once its partition is done', () => {
    const s = new NodeScheduler(options({ batchSize: 2, deferrals }), settings({ concurrency: 1 }), span(0, 2));
    defer(s, 0);
    defer(s, 10);
    expect(s.toState()).toMatchObject({ deferred: { 2: span(0, 2).toJSON() }, deferredUntil: 1010 });
    const next = new NodeScheduler(options({ batchSize: 2, deferrals }), settings({ concurrency: 1 }), undefined, s.toState());
    expect(defer(next, 500)).toBeNull();
    const batch = defer(next, 1010, { finished: [0], deferred: 1 });
    expect(batch!.indices).toEqual([0, 1]);
    expect(next.toState().deferred).toEqual({ 3: span(1, 2).toJSON() });
  });

  it('ran them again at once, uncounted, for ever without the option (runs from before the patch deferrals-bounded)', () => {
    const s = new NodeScheduler(options({ batchSize: 2 }), settings({ concurrency: 1 }), span(0, 2));
    for (let i = 0; i < 20; i++) expect(defer(s, i)!.indices).toEqual([0, 1]);
    expect(s.takeReport().failures).toEqual([]);
    expect(s.tickMs()).toBeNull();
  });
});

describe('NodeScheduler: continue-as-new carries everything, in-flight batches included', () => {
  it('carried in-flight partitions start first in the next run, without tokens, marked to recheck', () => {
    const s = new NodeScheduler(options({ batchSize: 2 }), settings({ rate: 1, burst: 4, concurrency: 2 }), span(0, 10));
    s.advance(0);
    const [a] = s.startable(); // [0,1] and [2,3] in flight, bucket spent
    complete(s, a!);
    const state = JSON.parse(JSON.stringify(s.toState()));
    const next = new NodeScheduler(options({ batchSize: 2 }), settings(), new RangeSet(), state);
    expect(next.running).toBe(0);
    expect(next.queued).toBe(8);
    const batches = next.startable();
    expect(batches[0]).toMatchObject({ indices: [2, 3], recheck: [true, true] });
    // Unreported completions travel too.
    expect([...RangeSet.fromJSON(next.takeReport().done)]).toEqual([0, 1]);
  });

  it('partitions of a restarted node workflow are marked to recheck but still pay tokens', () => {
    const s = new NodeScheduler(options(), settings({ rate: 1, burst: 1, concurrency: 5 }), span(0, 3), undefined, RangeSet.of([1, 2]));
    s.advance(0);
    const [first] = s.startable();
    expect(first).toMatchObject({ indices: [0], recheck: [false] });
    expect(s.startable()).toEqual([]);
    s.advance(1000);
    expect(s.startable()[0]).toMatchObject({ indices: [1], recheck: [true] });
  });

  it('nothing is lost or reported twice across random continue-as-new hand-overs, throttles and failures', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = seededRandom(seed);
      const opts = options({ batchSize: 1 + Math.floor(random() * 4), maxThrottles: 2 });
      let s = new NodeScheduler(opts, settings({ rate: 40, burst: 4, concurrency: 3 }), span(0, 200));
      let inFlight: Batch[] = [];
      const done: number[] = [];
      const failed: number[] = [];
      const collect = () => {
        const report = s.takeReport();
        done.push(...RangeSet.fromJSON(report.done));
        for (const group of report.failures) failed.push(...RangeSet.fromJSON(group.ranges));
      };
      let now = 0;
      for (let step = 0; step < 100_000 && done.length + failed.length < 200; step++) {
        now += 20 + Math.floor(random() * 50);
        s.advance(now);
        inFlight.push(...s.startable());
        if (random() < 0.02) {
          // Continue as new: the batches in flight are abandoned (their results never arrive).
          collect();
          s = new NodeScheduler(opts, settings(), new RangeSet(), JSON.parse(JSON.stringify(s.toState())));
          inFlight = [];
          continue;
        }
        const batch = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0];
        if (!batch) continue;
        const roll = random();
        if (roll < 0.1) s.settle(batch.id, { kind: 'completed', finished: [], throttled: { index: batch.indices[0]!, message: 't' } });
        else if (roll < 0.13) s.settle(batch.id, { kind: 'failed', finished: [], failedIndex: batch.indices[0]!, message: 'f', type: 'Error' });
        else if (roll < 0.15) s.settle(batch.id, { kind: 'cancelled' });
        else complete(s, batch, now);
        if (random() < 0.2) collect();
      }
      collect();
      const all = [...done, ...failed].sort((a, b) => a - b);
      expect(all, `seed ${seed}`).toEqual(Array.from({ length: 200 }, (_, i) => i));
    }
  });
});

describe('NodeScheduler: batchSize auto', () => {
  const timed = (index: number, startedAt: number, ms: number): PartitionResult => ({ ...result(index, startedAt), finishedAt: startedAt + ms });
  const finish = (s: NodeScheduler, batch: Batch, ms: number) =>
    s.settle(batch.id, { kind: 'completed', finished: batch.indices.map((i, k) => timed(i, 1000 + k * ms, ms)) });

  it('times one partition first, then runs as many per activity as fit in the target', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000 }), settings({ concurrency: 2 }), span(0, 1000));
    s.advance(0);
    const [probe, ...others] = s.startable();
    expect(probe!.indices).toEqual([0]);
    expect(others).toEqual([]);
    // It waits for it for a quarter of the target, with a pacing tick at the end of that.
    expect(s.waitReason()).toBe('measuring');
    expect(s.tickMs()).toBe(500);
    s.advance(100);
    expect(s.startable()).toEqual([]);
    expect(s.tickMs()).toBe(400);
    expect(s.currentStats().batchSize).toBe(1);
    finish(s, probe!, 100);
    // 100 ms a partition: 20 fit in 2 s.
    expect(s.currentStats().batchSize).toBe(20);
    expect(s.tickMs()).toBeNull();
    expect(indices(s.startable())).toEqual([Array.from({ length: 20 }, (_, i) => 1 + i), Array.from({ length: 20 }, (_, i) => 21 + i)]);
  });

  it('a first partition still running after a quarter of the target is slow: the others start one per activity', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000 }), settings({ concurrency: 3 }), span(0, 10));
    s.advance(0);
    expect(indices(s.startable())).toEqual([[0]]);
    s.advance(499);
    expect(s.startable()).toEqual([]);
    s.advance(500);
    expect(indices(s.startable())).toEqual([[1], [2]]);
    expect(s.tickMs()).toBeNull();
    expect(s.waitReason()).toBe('concurrency');
  });

  it('a first partition that failed measures nothing: another is timed in its place', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000 }), settings({ concurrency: 3 }), span(0, 10));
    s.advance(0);
    const [probe] = s.startable();
    s.settle(probe!.id, { kind: 'failed', finished: [], failedIndex: 0, message: 'boom', type: 'Error' });
    s.advance(100);
    expect(indices(s.startable())).toEqual([[1]]);
    s.advance(600);
    expect(indices(s.startable())).toEqual([[2], [3]]);
  });

  it('keeps slow partitions one per activity, whatever it measures', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000 }), settings({ concurrency: 1 }), span(0, 10));
    for (let i = 0; i < 5; i++) {
      const [batch] = s.startable();
      expect(batch!.indices).toHaveLength(1);
      finish(s, batch!, 1000);
    }
  });

  it('an explicit batch size wins, and reports no automatic size', () => {
    const s = new NodeScheduler(options({ batchSize: 3, batchTargetMs: 2000 }), settings({ concurrency: 1 }), span(0, 10));
    const [batch] = s.startable();
    finish(s, batch!, 1);
    expect(s.startable()[0]!.indices).toHaveLength(3);
    expect(s.currentStats().batchSize).toBeUndefined();
    expect(s.toState().autoBatch).toBeUndefined();
  });

  it('spreads a short queue evenly over its slots, and carries what it measured across continue-as-new', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000, evenShares: true }), settings({ concurrency: 4 }), span(0, 44));
    // Partitions start as soon as their batch does (1000): nothing waits for a worker.
    s.advance(1000);
    const [probe] = s.startable();
    finish(s, probe!, 10);
    // 43 waiting on 4 slots: an even share each, not 43 in one.
    const wave = s.startable();
    expect(wave.map((b) => b.indices.length)).toEqual([11, 11, 11, 10]);
    finish(s, wave[0]!, 10);
    // One slot free, nothing waiting: nothing starts.
    expect(s.startable()).toEqual([]);
    const next = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000, evenShares: true }), settings(), new RangeSet(), JSON.parse(JSON.stringify(s.toState())));
    expect(next.toState().autoBatch?.msPerPartition).toBe(10);
    // The 32 carried partitions start first, an even share of them on each slot.
    expect(next.startable().map((b) => b.indices.length)).toEqual([8, 8, 8, 8]);
  });

  it('an even share is still capped by what fits in the target; a slot freed later takes a share of what waits then', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000, evenShares: true }), settings({ concurrency: 4 }), span(0, 1001));
    s.advance(1000);
    finish(s, s.startable()[0]!, 40);
    // 1000 waiting, 50 fit in the target (40 ms each): four batches of 50, not of 250.
    const wave = s.startable();
    expect(wave.map((b) => b.indices.length)).toEqual([50, 50, 50, 50]);
    finish(s, wave[0]!, 10);
    // Faster now (the running mean moved from 40 towards 10 ms, to 31): the freed slot takes the 64 that fit, of the 800 waiting.
    expect(s.startable().map((b) => b.indices.length)).toEqual([64]);
  });

  it('in runs from before even shares, each batch of a round took a share of what the ones before it left', () => {
    const s = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000 }), settings({ concurrency: 4 }), span(0, 44));
    s.advance(1000);
    finish(s, s.startable()[0]!, 10);
    expect(s.startable().map((b) => b.indices.length)).toEqual([11, 8, 6, 5]);
  });
});

/**
 * A service whose latency grows with its load, as the `sleep` transform's latencyBase and
 * latencyCapacity simulate it: base × (1 + calls in flight / capacity). Driven by the scheduler
 * as the node workflow drives it (it wakes on completions and on pacing ticks), with a dispatch
 * delay between a start and the call. Without `reported`, partitions carry only their duration.
 */
class SimulatedService {
  private events: Array<{ at: number; kind: 'call' | 'done' | 'tick'; batch?: Batch; started?: number; latency?: number; scheduled?: number }> = [];
  private now = 0;
  private inFlight = 0;
  private ticking = false;
  readonly calls: Array<{ at: number; latency: number }> = [];

  constructor(
    private readonly s: NodeScheduler,
    public shape: { base: number; capacity: number },
    private readonly options: { dispatchMs?: number; reported?: boolean } = {},
  ) {
    this.wake();
  }

  private push(event: SimulatedService['events'][number]): void {
    const at = this.events.findIndex((other) => other.at > event.at);
    this.events.splice(at < 0 ? this.events.length : at, 0, event);
  }

  private wake(scheduled?: number): void {
    this.s.advance(this.now, scheduled);
    for (const batch of this.s.startable()) this.push({ at: this.now + (this.options.dispatchMs ?? 20), kind: 'call', batch });
    const tick = this.s.tickMs();
    if (tick !== null && !this.ticking) {
      this.ticking = true;
      this.push({ at: this.now + tick, kind: 'tick', scheduled: tick });
    }
  }

  /** Runs until `seconds` from the simulation's start. */
  run(seconds: number): this {
    while (this.events.length > 0 && this.events[0]!.at <= seconds * 1000) {
      const event = this.events.shift()!;
      this.now = event.at;
      if (event.kind === 'call') {
        this.inFlight++;
        const latency = this.shape.base * (1 + this.inFlight / this.shape.capacity);
        this.calls.push({ at: this.now, latency });
        this.push({ at: this.now + latency, kind: 'done', batch: event.batch, started: this.now, latency });
      } else if (event.kind === 'done') {
        this.inFlight--;
        // The transform's own figure, or only the partition's duration (a little longer than the call).
        const finished = event.batch!.indices.map((index) => ({
          ...result(index, event.started! - 5),
          finishedAt: this.now + 5,
          ...(this.options.reported === false ? {} : { latencyMs: event.latency! }),
        }));
        this.s.settle(event.batch!.id, { kind: 'completed', finished });
        this.wake();
      } else {
        this.ticking = false;
        this.wake(event.scheduled);
      }
    }
    return this;
  }

  /** Calls made from `fromSeconds` on, per second, and their p95 latency. */
  since(fromSeconds: number, toSeconds: number): { rate: number; p95: number | null } {
    const late = this.calls.filter((c) => c.at >= fromSeconds * 1000 && c.at < toSeconds * 1000);
    return { rate: late.length / (toSeconds - fromSeconds), p95: p95(late.map((c) => c.latency)) };
  }
}

describe('NodeScheduler: pacing on measured latency', () => {
  const paced = (concurrency: number, target = 500, slowStart = false) =>
    new NodeScheduler(options({ latencyTargetMs: target, zeroHolds: true, climbWhenBinding: true, slowStart }), settings({ concurrency }), span(0, 1_000_000));

  for (const [shape, slowStart] of [
    { base: 50, capacity: 2 },
    { base: 100, capacity: 4 },
    { base: 20, capacity: 1 },
    { base: 50, capacity: 4 },
  ].flatMap((shape) => [[shape, false], [shape, true]] as const)) {
    it(`converges within 20 % of what a service (base ${shape.base} ms, capacity ${shape.capacity}) takes at the target, its p95 under it${slowStart ? ', started slowly' : ''}`, () => {
      const s = paced(200, 500, slowStart);
      const service = new SimulatedService(s, shape).run(120);
      // At the target the service holds capacity × (target / base - 1) calls, each for the target.
      const capacity = (shape.capacity * (500 / shape.base - 1)) / 0.5;
      const { rate, p95: high } = service.since(60, 120);
      expect(rate).toBeGreaterThanOrEqual(0.8 * capacity);
      expect(rate).toBeLessThanOrEqual(1.2 * capacity);
      expect(high).toBeLessThanOrEqual(500);
      expect(s.waitReason()).toBe('slowed');
      expect(s.currentStats().concurrency).toBeLessThan(200);
    });
  }

  it('without a reported latency, paces on the partitions\' own durations', () => {
    const service = new SimulatedService(paced(100, 600), { base: 50, capacity: 2 }, { reported: false }).run(90);
    const { rate, p95: high } = service.since(45, 90);
    // Durations are the call plus 10 ms, so calls stay under 590 ms.
    expect(high).toBeLessThanOrEqual(590);
    expect(rate).toBeGreaterThanOrEqual(0.8 * ((2 * (600 / 50 - 1)) / 0.6));
  });

  it('a node whose service keeps up is never slowed', () => {
    const s = paced(10);
    new SimulatedService(s, { base: 50, capacity: 100 }).run(30);
    expect(s.currentStats()).toMatchObject({ concurrency: 10 });
    expect(s.toState().latency).toMatchObject({ limit: null, slowdowns: 0 });
  });

  it('climbs back once the service recovers, up to the concurrency, and a spec without a target lifts the cap', () => {
    const s = paced(40);
    const service = new SimulatedService(s, { base: 50, capacity: 1 }).run(60);
    expect(s.currentStats().concurrency).toBeLessThan(15);
    // The service gets room: the cap climbs one activity per target's worth of time.
    service.shape = { base: 10, capacity: 100 };
    service.run(70);
    expect(s.currentStats().concurrency).toBeLessThan(40);
    service.run(90);
    expect(s.currentStats().concurrency).toBe(40);
    const again = paced(40);
    new SimulatedService(again, { base: 50, capacity: 1 }).run(30);
    expect(again.currentStats().concurrency).toBeLessThan(40);
    again.reconfigure(options());
    expect(again.currentStats().concurrency).toBe(40);
  });

  it('a concurrency of 0 (a hold) starts nothing under a latency cap; runs from before the fix let one start', () => {
    for (const zeroHolds of [true, false]) {
      const s = new NodeScheduler(options({ latencyTargetMs: 500, zeroHolds }), settings({ concurrency: 40 }), span(0, 1_000_000));
      const service = new SimulatedService(s, { base: 50, capacity: 1 }).run(30);
      expect(s.currentStats().concurrency).toBeLessThan(40);
      // Held: what runs finishes, and nothing new starts (before the fix, one at a time went on).
      s.configure(settings({ seq: 2, concurrency: 0 }), 0);
      service.run(60);
      const started = service.since(31, 60).rate;
      if (zeroHolds) {
        expect(started).toBe(0);
        expect(s.running).toBe(0);
        expect(s.startable()).toEqual([]);
      } else {
        expect(started).toBeGreaterThan(0);
      }
    }
  });

  describe('the cap climbs only while it holds work back (climbWhenBinding)', () => {
    const M = 60_000;
    /** Capped at 9 by its latency target (1 min) with 9 running; its latest latencies (30 s) let it climb one activity a minute. */
    function capped(climbWhenBinding: boolean): { s: NodeScheduler; running: Batch[] } {
      const opts = options({ latencyTargetMs: M, zeroHolds: true, climbWhenBinding });
      const fresh = new NodeScheduler(opts, settings({ concurrency: 40 }), span(0, 1_000_000));
      fresh.advance(0);
      const s = new NodeScheduler(opts, settings({ concurrency: 40 }), undefined, { ...fresh.toState(), latency: { limit: 9, samples: Array(20).fill(30_000), slowdowns: 1 } });
      const running = s.startable();
      expect(running).toHaveLength(9);
      return { s, running };
    }

    it('climbs one activity a minute while as many run as the cap allows, batches landing in between too', () => {
      const { s, running } = capped(true);
      complete(s, running[0]!, 30_000);
      s.advance(M);
      expect(s.currentStats().concurrency).toBe(10);
      expect(s.startable()).toHaveLength(2);
      // Fewer running than the cap allows (nothing waits for it): it holds.
      const { s: idle, running: landing } = capped(true);
      for (const batch of landing) complete(idle, batch);
      idle.configure(settings({ seq: 2, concurrency: 40 }), 0);
      idle.advance(10 * M);
      expect(idle.toState().latency?.limit).toBe(9);
    });

    it('a share of 0 (a hold) keeps the cap: the node goes on at it, not at its concurrency; runs from before lifted it', () => {
      for (const climbWhenBinding of [true, false]) {
        const { s } = capped(climbWhenBinding);
        s.configure(settings({ seq: 2, concurrency: 0 }), 0);
        s.advance(M);
        s.configure(settings({ seq: 3, concurrency: 40 }), M);
        s.advance(M + 1);
        expect(s.startable()).toHaveLength(climbWhenBinding ? 0 : 31);
      }
    });

    it('a night paused (outside the run window) lets no time count: the cap is where it was', () => {
      for (const climbWhenBinding of [true, false]) {
        const { s, running } = capped(climbWhenBinding);
        s.configure(settings({ seq: 2, concurrency: 40, paused: true }), 0);
        for (const batch of running) complete(s, batch, M);
        s.advance(M);
        const morning = 8 * 60 * M;
        s.configure(settings({ seq: 3, concurrency: 40 }), morning);
        s.advance(morning);
        expect(s.startable()).toHaveLength(climbWhenBinding ? 9 : 40);
      }
    });

    it('a concurrency lowered below the cap for a while does not lift it', () => {
      for (const climbWhenBinding of [true, false]) {
        const { s } = capped(climbWhenBinding);
        s.configure(settings({ seq: 2, concurrency: 5 }), 0);
        s.advance(2 * M);
        s.configure(settings({ seq: 3, concurrency: 40 }), 2 * M);
        s.advance(2 * M + 1);
        expect(s.currentStats().concurrency).toBe(climbWhenBinding ? 9 : 40);
      }
    });
  });

  it('carries its cap and latencies across continue-as-new', () => {
    const s = paced(200);
    new SimulatedService(s, { base: 50, capacity: 2 }).run(60);
    const state = JSON.parse(JSON.stringify(s.toState()));
    const next = new NodeScheduler(options({ latencyTargetMs: 500 }), settings({ concurrency: 200 }), new RangeSet(), state);
    expect(next.currentStats().concurrency).toBe(s.currentStats().concurrency);
    expect(next.currentStats().latencyP95Ms).toBe(s.currentStats().latencyP95Ms);
  });
});

/**
 * Batches as a worker runs them: an activity's partitions one after another, each a call to a
 * service whose latency grows with the activities calling it at once (base × (1 + activities /
 * capacity), as the call starts), reported by the transform. Driven as the node workflow drives
 * the scheduler (it wakes on a batch's end and on pacing ticks).
 */
function runBatches(s: NodeScheduler, shape: { base: number; capacity: number }, untilMs: number): { calls: Array<{ at: number; latency: number }>; endedAt: number | null } {
  type Running = { batch: Batch; next: number; finished: PartitionResult[] };
  const events: Array<{ at: number; running?: Running; tick?: number }> = [];
  const calls: Array<{ at: number; latency: number }> = [];
  const push = (event: (typeof events)[number]) => {
    const at = events.findIndex((other) => other.at > event.at);
    events.splice(at < 0 ? events.length : at, 0, event);
  };
  let now = 0;
  let active = 0;
  let ticking = false;
  let endedAt: number | null = null;
  const call = (running: Running, at: number) => {
    const latency = shape.base * (1 + active / shape.capacity);
    calls.push({ at, latency });
    const index = running.batch.indices[running.next]!;
    running.finished.push({ ...result(index, at), finishedAt: at + latency, latencyMs: latency });
    push({ at: at + latency, running });
  };
  const wake = (scheduled?: number) => {
    s.advance(now, scheduled);
    const started = s.startable();
    active += started.length;
    for (const batch of started) call({ batch, next: 0, finished: [] }, now + 20);
    const tick = s.tickMs();
    if (tick !== null && !ticking) {
      ticking = true;
      push({ at: now + tick, tick });
    }
  };
  wake();
  while (events.length > 0 && events[0]!.at <= untilMs) {
    const event = events.shift()!;
    now = event.at;
    const running = event.running;
    if (running && ++running.next < running.batch.indices.length) {
      call(running, now);
    } else if (running) {
      active--;
      s.settle(running.batch.id, { kind: 'completed', finished: running.finished });
      if (s.queued === 0 && s.running === 0 && endedAt === null) endedAt = now;
      wake();
    } else {
      ticking = false;
      wake(event.tick);
    }
  }
  return { calls, endedAt };
}

describe('NodeScheduler: a slow start under a latency target (slowStart)', () => {
  // The trial's node: 168 quick partitions, 8 slots, automatic batches of about 2 s, a target of 500 ms
  // on a service that takes 200 ms alone and 900 ms with 8 callers (500 ms with 4).
  const shape = { base: 100, capacity: 1 };
  const node = (slowStart: boolean) =>
    new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000, latencyTargetMs: 500, zeroHolds: true, climbWhenBinding: true, evenShares: true, slowStart }), settings({ concurrency: 8 }), span(0, 168));

  it('runs few calls over the target before it knows the latency, where every slot took a batch before', () => {
    const before = runBatches(node(false), shape, 600_000);
    const after = runBatches(node(true), shape, 600_000);
    const over = (run: typeof before) => run.calls.filter((c) => c.latency > 500).length;
    expect(before.calls).toHaveLength(168);
    expect(after.calls).toHaveLength(168);
    // Before: the first eight batches of 10 ran at 900 ms, 80 calls over the target (measured: 80).
    expect(over(before)).toBeGreaterThanOrEqual(40);
    // After: 1, then 2, then 4 activities, each step on latencies of the one before; it holds at 4 (500 ms) (measured: 0).
    expect(over(after)).toBeLessThanOrEqual(5);
    // And ends little later (measured: 22.3 s against 20.7 s).
    expect(after.endedAt!).toBeLessThanOrEqual(1.25 * before.endedAt!);
  });

  it('starts at one activity and doubles it a step, each on latencies of activities started since the step before', () => {
    const s = node(true);
    expect(s.startable()).toHaveLength(1); // the probe, alone as before
    expect(s.currentStats().concurrency).toBe(1);
    // A service that answers in 50 ms whatever the load: 1, 2, 4, ... and lifted at the node's 64.
    const quick = new NodeScheduler(options({ latencyTargetMs: 500, zeroHolds: true, climbWhenBinding: true, slowStart: true }), settings({ concurrency: 64 }), span(0, 100_000));
    const service = new SimulatedService(quick, { base: 50, capacity: 1e9 });
    const limits: number[] = [];
    for (let ms = 0; ms <= 2000; ms += 5) {
      service.run(ms / 1000);
      const limit = quick.currentStats().concurrency;
      if (limits.at(-1) !== limit) limits.push(limit);
    }
    expect(limits).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(quick.toState().latency).toEqual({ limit: null, samples: expect.any(Array), slowdowns: 0 });
    // A service that slows down on the way: the first slow-down ends the doubling; from then on it climbs one activity per target's worth of time.
    const slowing = new NodeScheduler(options({ latencyTargetMs: 500, zeroHolds: true, climbWhenBinding: true, slowStart: true }), settings({ concurrency: 64 }), span(0, 100_000));
    new SimulatedService(slowing, { base: 50, capacity: 2 }).run(30);
    expect(slowing.toState().latency).toMatchObject({ slowdowns: expect.any(Number) });
    expect(slowing.toState().latency!.slowdowns).toBeGreaterThan(0);
    expect(slowing.toState().latency!.starting).toBeUndefined();
  });

  it('does not start slowly again after continue-as-new, nor in runs from before it existed', () => {
    const s = node(true);
    runBatches(s, shape, 8_000);
    const carried = new NodeScheduler(options({ batchSize: 'auto', batchTargetMs: 2000, latencyTargetMs: 500, slowStart: true }), settings({ concurrency: 8 }), undefined, JSON.parse(JSON.stringify(s.toState())));
    expect(carried.currentStats().concurrency).toBe(s.currentStats().concurrency);
    expect(carried.currentStats().concurrency).toBeGreaterThan(1);
    expect(node(false).currentStats().concurrency).toBe(8);
    // Without a latency target nothing starts slowly.
    expect(new NodeScheduler(options({ slowStart: true }), settings({ concurrency: 8 }), span(0, 100)).startable()).toHaveLength(8);
  });
});
