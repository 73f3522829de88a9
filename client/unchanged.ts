/** How pause, resume, set-rate, set-concurrency, set-budget and set-queue-rate say they changed nothing (they asked for what was in force). */
import type { Unchanged } from '../core/audit.ts';

/** ` (since <time>, by <who>: <why>)`: what the trail tells of the control that set it; empty when it tells nothing. */
export function sinceText(unchanged: Unchanged): string {
  if (unchanged.since === null) return '';
  const why = unchanged.reason !== null ? `: ${unchanged.reason}` : '';
  return ` (since ${new Date(unchanged.since).toISOString()}, by ${unchanged.by ?? 'someone unknown'}${why})`;
}

/** `is now 5/s`, or `was already 5/s (since ...): nothing changed`: what set-rate, set-concurrency and set-budget did. */
export const limitNow = (value: string, unchanged: Unchanged | undefined): string =>
  unchanged ? `was already ${value}${sinceText(unchanged)}: nothing changed` : `is now ${value}`;

/**
 * Several controls of one command that each changed nothing (set-budget --retries --cost): what
 * they asked has been in force together since the newer of their settings, by whom and why only
 * when one control set them all (each budget's own is in `budgets`); unknown when the trail does
 * not tell one of them.
 */
export function unchangedTogether(all: readonly Unchanged[]): Unchanged {
  if (all.length === 0 || all.some((u) => u.since === null)) return { since: null, by: null, reason: null };
  const newest = all.reduce((latest, u) => (u.since! > latest.since! ? u : latest));
  // Who set one is not who set the other: by and why only when the same control set them all.
  const alike = all.every((u) => u.by === newest.by && u.reason === newest.reason);
  return alike ? newest : { since: newest.since, by: null, reason: null };
}
