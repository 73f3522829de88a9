/**
 * Run ids of OpenLineage events: UUIDv7 (RFC 9562), as OpenLineage's clients make them, but
 * derived rather than random. The time part is when the backfill started and the rest a hash
 * of the backfill's run key and the node, so the START and the end of one run, and any retry
 * of either, carry the same id, and the ids of a backfill sort by when it started.
 */
import { createHash } from 'node:crypto';

export function lineageRunId(startedAt: number, runKey: string, node?: string): string {
  const bytes = createHash('sha256').update(`${runKey}\n${node ?? ''}`).digest().subarray(0, 16);
  const ms = BigInt(Math.max(0, Math.floor(startedAt)));
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f); // version 7
  bytes[8] = 0x80 | (bytes[8]! & 0x3f); // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
