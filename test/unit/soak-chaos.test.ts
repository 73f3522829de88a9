import { describe, expect, it } from 'vitest';
import { chaosSchedule, randomChaos, scheduledChaos, type ChaosEvent } from '../../scripts/soak-chaos.ts';

const THIRTY_MINUTES = 30 * 60_000;

function counts(events: ChaosEvent[]) {
  return {
    kills: events.filter((e) => e.action.kind === 'kill-worker').length,
    sigkill: events.filter((e) => e.action.kind === 'restart-server' && e.action.signal === 'SIGKILL').length,
    sigterm: events.filter((e) => e.action.kind === 'restart-server' && e.action.signal === 'SIGTERM').length,
  };
}

describe('chaosSchedule', () => {
  it('holds exactly the kills and restarts asked for, whatever the seed, spread over the duration in order', () => {
    for (let seed = 0; seed < 200; seed++) {
      const events = chaosSchedule({ durationMs: THIRTY_MINUTES, workerKills: 24, serverRestarts: 6, workers: 3, seed });
      expect(counts(events)).toEqual({ kills: 24, sigkill: 4, sigterm: 2 });
      const times = events.map((e) => e.at);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      // Quiet at both ends, and no two events closer than half a slot (slot: 0.9 × 30 min / 30 events = 54 s).
      expect(times[0]).toBeGreaterThanOrEqual(THIRTY_MINUTES / 20);
      expect(times.at(-1)).toBeLessThanOrEqual(THIRTY_MINUTES * 0.95);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(27_000 - 1);
      for (const { action } of events) {
        if (action.kind === 'kill-worker') {
          expect([0, 1, 2]).toContain(action.worker);
          expect(action.downMs).toBeGreaterThanOrEqual(300);
          expect(action.downMs).toBeLessThanOrEqual(1800);
        } else {
          expect(action.downMs).toBeGreaterThanOrEqual(500);
          expect(action.downMs).toBeLessThanOrEqual(5000);
        }
      }
    }
  }, 60_000);

  it('is the same for the same seed, and differs for another', () => {
    const options = { durationMs: THIRTY_MINUTES, workerKills: 24, serverRestarts: 6, workers: 3 };
    expect(chaosSchedule({ ...options, seed: 7 })).toEqual(chaosSchedule({ ...options, seed: 7 }));
    expect(chaosSchedule({ ...options, seed: 7 })).not.toEqual(chaosSchedule({ ...options, seed: 8 }));
  });

  it('takes the number of graceful restarts asked for', () => {
    const events = chaosSchedule({ durationMs: 60_000, workerKills: 0, serverRestarts: 3, gracefulRestarts: 3, workers: 3, seed: 1 });
    expect(counts(events)).toEqual({ kills: 0, sigkill: 0, sigterm: 3 });
  });

  it('refuses what it cannot schedule, naming the setting', () => {
    const base = { durationMs: 60_000, workerKills: 1, serverRestarts: 1, workers: 3, seed: 1 };
    expect(() => chaosSchedule({ ...base, durationMs: 0 })).toThrow(/positive duration/);
    expect(() => chaosSchedule({ ...base, workers: 0 })).toThrow(/at least one worker/);
    expect(() => chaosSchedule({ ...base, workerKills: -1 })).toThrow(/workerKills/);
    expect(() => chaosSchedule({ ...base, serverRestarts: 1.5 })).toThrow(/serverRestarts/);
    expect(() => chaosSchedule({ ...base, gracefulRestarts: 2 })).toThrow(/gracefulRestarts/);
  });
});

describe('chaos plans', () => {
  it('a schedule plays its events in order, late ones at once, then ends', () => {
    const plan = scheduledChaos([
      { at: 1000, action: { kind: 'kill-worker', worker: 0, downMs: 300 } },
      { at: 2000, action: { kind: 'restart-server', signal: 'SIGKILL', downMs: 500 } },
    ]);
    expect(plan.next(0)?.at).toBe(1000);
    expect(plan.next(5000)).toEqual({ at: 5000, action: { kind: 'restart-server', signal: 'SIGKILL', downMs: 500 } });
    expect(plan.next(6000)).toBeUndefined();
  });

  it('random chaos comes 3 to 12 s after the last event, kills workers more often than it restarts the server gracefully', () => {
    const plan = randomChaos(3, 3);
    let elapsed = 0;
    let kills = 0;
    for (let i = 0; i < 1000; i++) {
      const event = plan.next(elapsed)!;
      expect(event.at - elapsed).toBeGreaterThanOrEqual(3000);
      expect(event.at - elapsed).toBeLessThanOrEqual(12_000);
      if (event.action.kind === 'kill-worker') kills++;
      else expect(event.action.signal).toBe('SIGTERM');
      elapsed = event.at;
    }
    expect(kills).toBeGreaterThan(550);
    expect(kills).toBeLessThan(750);
  });
});
