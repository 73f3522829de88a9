/** A moment as the command line prints it: `2026-12-07 10:43:01 UTC`. */
export function utcTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** A moment as ids carry it: `20261207-104301Z`. */
export function compactUtc(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
}
