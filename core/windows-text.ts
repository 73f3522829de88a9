/** Run windows in words, for the command line (kept apart from core/windows.ts, whose schemas load zod). */
import type { Windows } from './windows.ts';

/**
 * A spec's run windows in a line, as `plan` shows them: "weekdays 22:00–06:00, sat 00:00–24:00
 * at most 5/s (Europe/Berlin); outside them paused".
 */
export function windowsText(windows: Windows): string {
  const allow = windows.allow.map((w) => {
    const days = typeof w.days === 'string' ? w.days : w.days.join(' ');
    const limits = [w.rate !== undefined ? `${w.rate}/s` : '', w.concurrency !== undefined ? `${w.concurrency} at once` : ''].filter(Boolean).join(', ');
    return `${days} ${w.from}–${w.to}${limits ? ` at most ${limits}` : ''}`;
  });
  const outside = windows.outside === 'pause' ? 'paused' : `at most ${windows.outside.rate}/s${windows.outside.concurrency !== undefined ? `, ${windows.outside.concurrency} at once` : ''}`;
  return `${allow.join(', ')} (${windows.timeZone}); outside them ${outside}`;
}
