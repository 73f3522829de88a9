/** How pause, resume, set-rate and set-concurrency say they changed nothing (they asked for what was in force). */
import type { Unchanged } from '../core/audit.ts';

/** ` (since <time>, by <who>: <why>)`: what the trail tells of the control that set it; empty when it tells nothing. */
export function sinceText(unchanged: Unchanged): string {
  if (unchanged.since === null) return '';
  const why = unchanged.reason !== null ? `: ${unchanged.reason}` : '';
  return ` (since ${new Date(unchanged.since).toISOString()}, by ${unchanged.by ?? 'someone unknown'}${why})`;
}

/** `is now 5/s`, or `was already 5/s (since ...): nothing changed`: what set-rate and set-concurrency did. */
export const limitNow = (value: string, unchanged: Unchanged | undefined): string =>
  unchanged ? `was already ${value}${sinceText(unchanged)}: nothing changed` : `is now ${value}`;
