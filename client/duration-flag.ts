/**
 * Durations on the command line (`wait --timeout`, `start --wait-for-datasets`,
 * `status --interval`): what a spec takes (500ms, 30s, 10m, 2h, 1d) and a bare number, which
 * counts seconds (`--timeout 300`).
 *
 * The spec's durations (timeout, heartbeatTimeout, retry intervals) keep requiring a unit:
 * they reach Temporal's activity options as written, and Temporal reads a bare number there
 * as milliseconds, so `heartbeatTimeout: "300"` would mean 300 s to backfill and 300 ms to
 * the server.
 */
import { parseDuration } from '../core/duration.ts';
import { BackfillError } from '../core/errors.ts';

const BARE_SECONDS = /^\d+(?:\.\d+)?$/;

export type DurationBounds = { minMs?: number; maxMs?: number };

/**
 * Milliseconds in a flag's duration, or a BackfillError (`invalid_argument`, path: the flag
 * without its dashes) that shows how to write one. `fix` ends the message when given.
 */
export function parseDurationFlag(flag: string, value: string, bounds: DurationBounds = {}, fix?: string): number {
  const text = value.trim();
  const ms = BARE_SECONDS.test(text) ? Math.round(Number(text) * 1000) : parseDuration(text);
  const path = flag.replace(/^-+/, '');
  if (ms === undefined) {
    throw new BackfillError('invalid_argument', `${flag} '${value}' is not a duration: write e.g. 300 (seconds), 90s, 30m or 2h${fix ? `, ${fix}` : ''}`, path);
  }
  const { minMs = 0, maxMs = Infinity } = bounds;
  if (ms < minMs || ms > maxMs) {
    const range = Number.isFinite(maxMs) ? `from ${describe(minMs)} to ${describe(maxMs)}` : `at least ${describe(minMs)}`;
    const bare = BARE_SECONDS.test(text) ? ` (a bare number counts seconds: ${text} is ${describe(ms)})` : '';
    throw new BackfillError('invalid_argument', `${flag} '${value}' must be ${range}${bare}`, path);
  }
  return ms;
}

function describe(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
