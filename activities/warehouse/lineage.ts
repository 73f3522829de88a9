/** Input versions as the ledger records them: what a partition read, compactly. */
import { createHash } from 'node:crypto';
import type { InputVersions, PinnedInput } from './types.ts';

/** Above this many upstream partitions, lineage keeps a digest instead of every version. */
export const MAX_LISTED_INPUTS = 100;

export function inputVersions(pinned: readonly PinnedInput[]): InputVersions[] {
  return pinned.map(({ node, from, to, versions }) => {
    const sorted = [...versions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const digest = createHash('sha256');
    for (const [partition, version] of sorted) digest.update(`${partition}=${version}\n`);
    return {
      node,
      from,
      to,
      partitions: sorted.length,
      ...(sorted.length <= MAX_LISTED_INPUTS ? { versions: Object.fromEntries(sorted) } : {}),
      digest: digest.digest('hex').slice(0, 16),
    };
  });
}
