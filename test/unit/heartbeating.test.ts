/**
 * The heartbeats of the activities that report no progress of their own (activities/heartbeating.ts):
 * every third of the heartbeat timeout while the work runs, none once it settled, none without a timeout.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Logger } from '@temporalio/common';
import { heartbeatEveryMs } from '../../core/heartbeat.ts';
import { heartbeating, heartbeatingAll } from '../../activities/heartbeating.ts';

const quiet = () => undefined;
/** The failures the tests make on purpose stay out of the output. */
const logger: Logger = { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };

/** Work the test settles. */
function pending<T>() {
  let settle!: { resolve(value: T): void; reject(error: Error): void };
  const promise = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  return { promise, ...settle };
}

describe('heartbeatEveryMs', () => {
  it('is a third of the timeout, and never more often than every 200 ms', () => {
    expect(heartbeatEveryMs(30_000)).toBe(10_000);
    expect(heartbeatEveryMs(1_000)).toBe(333);
    expect(heartbeatEveryMs(300)).toBe(200);
  });
});

describe('heartbeating', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** An activity environment with a heartbeat timeout of `timeoutMs`, and the heartbeats it received. */
  function environment(timeoutMs: number | undefined) {
    const env = new MockActivityEnvironment(timeoutMs === undefined ? {} : { heartbeatTimeoutMs: timeoutMs }, { logger });
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    return { env, beats };
  }

  it('heartbeats every third of the timeout while the work runs, and stops once it settled', async () => {
    const { env, beats } = environment(30_000);
    const work = pending<string>();
    const result = env.run(() => heartbeating(() => work.promise));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(beats).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(20_001);
    expect(beats).toHaveLength(3);
    work.resolve('done');
    expect(await result).toBe('done');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(beats).toHaveLength(3);
  });

  it('stops once the work failed, and passes its error on', async () => {
    const { env, beats } = environment(600);
    const work = pending<string>();
    const result = env.run(() => heartbeating(() => work.promise)).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(beats).toHaveLength(5);
    work.reject(new Error('the warehouse is gone'));
    expect(await result).toMatchObject({ message: 'the warehouse is gone' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(beats).toHaveLength(5);
  });

  it('does not heartbeat an activity without a heartbeat timeout, nor outside an activity', async () => {
    const { env, beats } = environment(undefined);
    const work = pending<number>();
    const result = env.run(() => heartbeating(() => work.promise));
    await vi.advanceTimersByTimeAsync(120_000);
    work.resolve(1);
    expect(await result).toBe(1);
    expect(beats).toHaveLength(0);
    expect(await heartbeating(() => Promise.resolve(2))).toBe(2);
  });

  it('heartbeatingAll keeps each activity, its arguments and its result, heartbeating', async () => {
    const { env, beats } = environment(3_000);
    const work = pending<void>();
    const activities = heartbeatingAll({
      async add(a: number, b: number): Promise<number> {
        await work.promise;
        return a + b;
      },
    });
    const result = env.run(activities.add, 2, 3);
    await vi.advanceTimersByTimeAsync(2_500);
    expect(beats).toHaveLength(2);
    work.resolve();
    expect(await result).toBe(5);
  });
});
