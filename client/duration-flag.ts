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
  const { minMs = 0, maxMs = Infinity } = bounds;
  if (ms === undefined) {
    throw new BackfillError('invalid_argument', `${flag} '${value}' is not a duration: write e.g. ${examples(minMs, maxMs)}${fix ? `, ${fix}` : ''}`, path);
  }
  if (ms < minMs || ms > maxMs) {
    const range = Number.isFinite(maxMs) ? `from ${describe(minMs)} to ${describe(maxMs)}` : `at least ${describe(minMs)}`;
    const bare = BARE_SECONDS.test(text) ? ` (a bare number counts seconds: ${text} is ${describe(ms)})` : '';
    throw new BackfillError('invalid_argument', `${flag} '${value}' must be ${range}${bare}`, path);
  }
  return ms;
}

/** A bare number first (it counts seconds), then durations with units. */
const EXAMPLES: ReadonlyArray<readonly [text: string, ms: number]> = [['300 (seconds)', 300_000], ['90s', 90_000], ['30m', 1_800_000], ['2h', 7_200_000]];
/** Where EXAMPLES are not all within a flag's bounds: durations from which those within are picked. */
const LADDER: ReadonlyArray<readonly [text: string, ms: number]> = [['500ms', 500], ['2s', 2000], ['30s', 30_000], ['90s', 90_000], ['5m', 300_000], ['10m', 600_000], ['30m', 1_800_000], ['2h', 7_200_000], ['1d', 86_400_000]];

/** `300 (seconds), 90s, 30m or 2h`; with bounds they do not all fit, examples within them and the range. */
function examples(minMs: number, maxMs: number): string {
  const within = ([, ms]: readonly [string, number]) => ms >= minMs && ms <= maxMs;
  const list = (texts: string[]) => `${texts.slice(0, -1).join(', ')} or ${texts[texts.length - 1]}`;
  if (EXAMPLES.every(within)) return list(EXAMPLES.map(([text]) => text));
  const ladder = LADDER.filter(within);
  // The shortest, one between and the longest of those within.
  const picked = [...new Set([ladder[0], ladder[Math.floor((ladder.length - 1) / 2)], ladder[ladder.length - 1]])].filter((entry) => entry !== undefined);
  const bare = EXAMPLES[0]!;
  const texts = [...(within(bare) ? [bare[0]] : []), ...picked.map(([text]) => text)];
  const range = !Number.isFinite(maxMs) ? `at least ${describe(minMs)}` : minMs > 0 ? `from ${describe(minMs)} to ${describe(maxMs)}` : `up to ${describe(maxMs)}`;
  return texts.length > 0 ? `${list(texts)} (${range})` : range;
}

function describe(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
