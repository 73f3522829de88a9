/**
 * What the soak's chaos driver does, and when: pure and seeded, so that a soak can be run again
 * with the same disturbances (`--seed`).
 */
import { seededRandom } from '../core/random.ts';

export type ChaosAction =
  /** SIGKILL one worker process, start it again after `downMs`. */
  | { kind: 'kill-worker'; worker: number; downMs: number }
  /** Stop the Temporal server (SIGKILL: a crash; SIGTERM: a graceful shutdown), start it again on the same state after `downMs`. */
  | { kind: 'restart-server'; signal: 'SIGKILL' | 'SIGTERM'; downMs: number };

/** `at`: milliseconds after the chaos began. */
export type ChaosEvent = { at: number; action: ChaosAction };

/** Where the chaos comes from: the next event once the previous one is done (`elapsedMs` after the chaos began), or none. */
export type ChaosPlan = { next(elapsedMs: number): ChaosEvent | undefined };

export type ScheduleOptions = {
  durationMs: number;
  workerKills: number;
  serverRestarts: number;
  workers: number;
  seed: number;
  /** Of the server restarts, how many stop it with SIGTERM (the rest with SIGKILL). Default: a third, rounded down. */
  gracefulRestarts?: number;
};

/**
 * A fixed number of worker kills and server restarts, spread over the duration: the duration is
 * cut into one slot per event, each event falls at a random time in the middle of its slot, and
 * the kinds are shuffled over the slots. So the minimums hold whatever the seed, and no two
 * events crowd together. The first and last twentieth of the duration stay quiet: the backfill
 * gets going first, and the last event has time to show its effect before the chaos ends.
 */
export function chaosSchedule(options: ScheduleOptions): ChaosEvent[] {
  const { durationMs, workerKills, serverRestarts, workers, seed } = options;
  if (!(durationMs > 0)) throw new Error(`the chaos needs a positive duration, not ${durationMs} ms`);
  if (workers < 1 && workerKills > 0) throw new Error('worker kills need at least one worker');
  for (const [name, n] of Object.entries({ workerKills, serverRestarts })) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number of 0 or more, not ${n}`);
  }
  const graceful = options.gracefulRestarts ?? Math.floor(serverRestarts / 3);
  if (!Number.isInteger(graceful) || graceful < 0 || graceful > serverRestarts) {
    throw new Error(`gracefulRestarts must be between 0 and serverRestarts (${serverRestarts}), not ${graceful}`);
  }
  const random = seededRandom(seed);
  const kinds: Array<'kill-worker' | 'SIGKILL' | 'SIGTERM'> = [
    ...Array<'kill-worker'>(workerKills).fill('kill-worker'),
    ...Array<'SIGKILL'>(serverRestarts - graceful).fill('SIGKILL'),
    ...Array<'SIGTERM'>(graceful).fill('SIGTERM'),
  ];
  // Fisher-Yates.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const quiet = durationMs / 20;
  const slot = (durationMs - 2 * quiet) / Math.max(1, kinds.length);
  return kinds.map((kind, i) => {
    const at = Math.round(quiet + slot * (i + 0.25 + 0.5 * random()));
    if (kind === 'kill-worker') return { at, action: { kind, worker: Math.floor(random() * workers), downMs: Math.round(300 + random() * 1500) } };
    return { at, action: { kind: 'restart-server', signal: kind, downMs: Math.round(500 + random() * 4500) } };
  });
}

/** A fixed schedule as a plan: each event at its time (or at once, when the previous one ran late). */
export function scheduledChaos(events: readonly ChaosEvent[]): ChaosPlan {
  let index = 0;
  return {
    next: (elapsedMs) => {
      const event = events[index++];
      return event && { ...event, at: Math.max(event.at, elapsedMs) };
    },
  };
}

/**
 * Open-ended random chaos (the default topology's soak): every 3 to 12 s, SIGKILL a worker
 * (65%) or restart the server gracefully.
 */
export function randomChaos(seed: number, workers: number): ChaosPlan {
  const random = seededRandom(seed);
  return {
    next: (elapsedMs) => {
      const at = elapsedMs + 3000 + random() * 9000;
      if (random() < 0.65) return { at, action: { kind: 'kill-worker', worker: Math.floor(random() * workers), downMs: 300 + random() * 1500 } };
      return { at, action: { kind: 'restart-server', signal: 'SIGTERM', downMs: 500 + random() * 2000 } };
    },
  };
}
