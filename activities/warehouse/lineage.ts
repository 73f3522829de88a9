/** Input versions as the ledger records them: what a partition read, compactly. */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical.ts';
import type { ResolvedNode } from '../../core/spec.ts';
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

/** A hash of what a node computes: its transform, SQL, parameters and checks. */
export function specHash(node: Pick<ResolvedNode, 'transform' | 'sql' | 'params' | 'checks'>): string {
  const { transform, sql, params, checks } = node;
  return createHash('sha256').update(canonicalJson({ transform, sql: sql ?? null, params, checks })).digest('hex').slice(0, 16);
}
