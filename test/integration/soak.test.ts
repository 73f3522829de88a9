/**
 * The chaos soak, two minutes of it (`npm run soak` runs ten): workers killed with SIGKILL and
 * the Temporal server restarted at random under a SQL backfill; nothing lost, nothing published
 * twice, and the data equal to an undisturbed run.
 */
import { describe, expect, it } from 'vitest';
import { soak } from '../../scripts/soak.ts';

describe('chaos soak', () => {
  it('kills and restarts lose nothing and publish nothing twice; the data equals an undisturbed run', async () => {
    const result = await soak({ chaosMs: 120_000, hours: 700, seed: Date.now() % 1000, log: () => undefined });
    expect(result.kills + result.serverRestarts, JSON.stringify(result)).toBeGreaterThan(0);
    expect(result.lost).toBe(0);
    expect(result.publishedTwice).toBe(0);
    expect(result.published).toBe(result.partitions);
    expect(result.fingerprint).toBe(result.undisturbedFingerprint);
  }, 600_000);
});
