/** Input versions as the ledger records them: what a partition read, compactly. */
import { createHash } from 'node:crypto';
import type { InputVersions, PinnedInput } from './types.ts';

/** Above this many upstream partitions, lineage keeps a digest instead of every version. */
export const MAX_LISTED_INPUTS = 100;

export function inputVersions(pinned: readonly PinnedInput[]): InputVersions[] {
  return pinned.map(({ node, from, to, versions }) => {
    const sorted = sortedVersions(versions);
    return {
      node,
      from,
      to,
      partitions: sorted.length,
      ...(sorted.length <= MAX_LISTED_INPUTS ? { versions: Object.fromEntries(sorted) } : {}),
      digest: inputDigest(sorted),
    };
  });
}

type Versions = ReadonlyArray<readonly [partition: string, version: number]>;

function sortedVersions(versions: Versions): Versions {
  return [...versions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The hash of every (partition, version) pair read from one upstream node, in any order. */
export function inputDigest(versions: Versions): string {
  const digest = createHash('sha256');
  for (const [partition, version] of sortedVersions(versions)) digest.update(`${partition}=${version}\n`);
  return digest.digest('hex').slice(0, 16);
}
