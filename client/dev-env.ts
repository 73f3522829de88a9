/**
 * What other terminals need to find a `backfill dev` server: their commands connect to
 * localhost:7233 and link to the Web UI on http://localhost:8233 unless TEMPORAL_ADDRESS and
 * BACKFILL_UI_URL say otherwise. On those ports nothing; on others, the variables to export.
 */
import { DEFAULT_UI_URL } from '../host/settings.ts';
import { DEFAULT_ADDRESS } from './connection.ts';

export type DevServerEnv = { TEMPORAL_ADDRESS?: string; BACKFILL_UI_URL?: string };

const portOf = (address: string): string => new URL(address.includes('://') ? address : `grpc://${address}`).port;

/** The variables that point other terminals at the server on `address` with its Web UI at `uiUrl` (null: headless). */
export function devServerEnv(address: string, uiUrl: string | null): DevServerEnv {
  return {
    ...(portOf(address) !== portOf(DEFAULT_ADDRESS) ? { TEMPORAL_ADDRESS: address } : {}),
    ...(uiUrl !== null && portOf(uiUrl) !== portOf(DEFAULT_UI_URL) ? { BACKFILL_UI_URL: uiUrl } : {}),
  };
}

/** `export NAME=value` lines to paste in a POSIX shell, under a line that says what they are for; none when nothing is needed. */
export function exportLines(env: DevServerEnv): string[] {
  const entries = Object.entries(env);
  if (entries.length === 0) return [];
  return ['In other terminals, point backfill at this server first:', ...entries.map(([name, value]) => `  export ${name}=${value}`)];
}
