/**
 * The benchmark's baseline: the plainest Temporal workflow that runs `total` no-op activities in
 * a sliding window of `width`, with nothing else (no readiness, no pacing, no reports). The
 * backfill's throughput is reported as a ratio to this one's, on the same server.
 */
import { condition, proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

export async function slidingWindow(total: number, width: number): Promise<number> {
  let started = 0;
  let done = 0;
  while (done < total) {
    while (started < total && started - done < width) {
      started++;
      void noop().then(() => void done++);
    }
    await condition(() => started - done < width || done === total);
  }
  return done;
}
