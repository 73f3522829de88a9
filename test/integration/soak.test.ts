/**
 * The chaos soak, in short (`npm run soak` runs ten minutes): workers killed with SIGKILL and the
 * Temporal server restarted under a SQL backfill; nothing lost, nothing published twice, and the
 * data equal to an undisturbed run. The backfill is paced to outlast the chaos, and the kills and
 * restarts follow a seeded schedule over it, so they happen however fast the machine runs the
 * backfill (unpaced, it once finished before the first random kill).
 */
import { describe, expect, it } from 'vitest';
import { soak } from '../../scripts/soak.ts';

const CHAOS_MS = 40_000;
/** The first node's partitions a second: it takes the whole chaos time, and the rest follow it. */
const RATE = 20;
const WANTED = { workerKills: 2, serverRestarts: 1, gracefulRestarts: 1 };

describe('chaos soak', () => {
  it('kills and restarts lose nothing and publish nothing twice; the data equals an undisturbed run', async () => {
    const result = await soak({
      chaosMs: CHAOS_MS,
      hours: (RATE * CHAOS_MS) / 1000,
      rate: RATE,
      schedule: WANTED,
      killBusyWorkers: true,
      seed: Date.now() % 1000,
      log: () => undefined,
    });
    const summary = JSON.stringify(result);
    expect(result.kills, summary).toBeGreaterThanOrEqual(WANTED.workerKills);
    expect(result.serverRestarts, summary).toBeGreaterThanOrEqual(WANTED.serverRestarts);
    expect(result.lost).toBe(0);
    expect(result.publishedTwice).toBe(0);
    expect(result.published).toBe(result.partitions);
    expect(result.fingerprint).toBe(result.undisturbedFingerprint);
  }, 600_000);
});
