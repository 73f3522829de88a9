/**
 * The benchmark's baseline: the plainest Temporal workflow that runs `total` no-op activities in
 * a sliding window of `width`, with nothing else (no readiness, no pacing, no reports). Like any
 * long workflow it continues as new to keep its history small: every `perRun` activities it lets
 * the window empty and starts a new run. The backfill's throughput is reported as a ratio to
 * this one's, on the same server.
 */
import { condition, continueAsNew, proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

export async function slidingWindow(total: number, width: number, perRun = 1000, doneBefore = 0): Promise<number> {
  const target = Math.min(total, doneBefore + perRun);
  let started = doneBefore;
  let done = doneBefore;
  while (done < target) {
    while (started < target && started - done < width) {
      started++;
      void noop().then(() => void done++);
    }
    await condition(() => (started < target && started - done < width) || done === target);
  }
  if (done < total) await continueAsNew<typeof slidingWindow>(total, width, perRun, done);
  return done;
}
