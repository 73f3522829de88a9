/**
 * How a backfill-wide limit is shared among the nodes that have work (the coordinator, and the
 * estimate's simulation of it). The limits' schemas are in limits.ts.
 */
import type { Limits, NodeLimits } from './limits.ts';

export type Claim = { id: string; cap: number | null; active: boolean };

/**
 * Shares a backfill-wide limit among the active nodes, each capped by its own limit
 * (water-filling: a node that needs less than an equal share leaves the rest to others).
 * Inactive nodes are left out of the result. `total` null means no shared limit: each node
 * keeps its own cap. With `integral`, shares are whole numbers (for concurrency).
 */
export function shareLimit(total: number | null, claims: readonly Claim[], integral = false): Map<string, number | null> {
  const out = new Map<string, number | null>();
  const active = claims.filter((c) => c.active);
  if (total === null) {
    for (const c of active) out.set(c.id, c.cap);
    return out;
  }
  const byCap = [...active].sort((a, b) => (a.cap ?? Infinity) - (b.cap ?? Infinity));
  let remaining = total;
  byCap.forEach((claim, i) => {
    const fair = remaining / (byCap.length - i);
    const share = claim.cap === null ? fair : Math.min(claim.cap, fair);
    out.set(claim.id, share);
    remaining -= share;
  });
  if (!integral) return out;
  // Round down, then hand the leftover units out in claim order.
  let leftover = total;
  for (const c of active) {
    const share = Math.floor(out.get(c.id)!);
    out.set(c.id, share);
    leftover -= share;
  }
  for (const c of active) {
    if (leftover < 1) break;
    const share = out.get(c.id)!;
    if (c.cap === null || share < c.cap) {
      out.set(c.id, share + 1);
      leftover--;
    }
  }
  return out;
}

export function minRate(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

export type NodeShare = { rate: number | null; concurrency: number };

/**
 * Each node's share of the backfill-wide limits. Nodes with work in hands share them; an idle
 * node keeps its previous share (it gets a fresh one with its next ready partitions), or
 * starts with its own limits within the backfill's.
 */
export function nodeShares(
  limits: Limits,
  nodes: ReadonlyArray<{ id: string; own: NodeLimits; active: boolean; previous?: NodeShare }>,
): Map<string, NodeShare> {
  const rates = shareLimit(limits.rate, nodes.map((n) => ({ id: n.id, cap: n.own.rate, active: n.active })));
  const slots = shareLimit(limits.concurrency, nodes.map((n) => ({ id: n.id, cap: n.own.concurrency, active: n.active })), true);
  const out = new Map<string, NodeShare>();
  for (const node of nodes) {
    const rate = rates.has(node.id) ? rates.get(node.id)! : node.previous ? node.previous.rate : minRate(node.own.rate, limits.rate);
    const concurrency = slots.has(node.id)
      ? (slots.get(node.id) as number)
      : node.previous
        ? node.previous.concurrency
        : Math.min(node.own.concurrency, limits.concurrency ?? Infinity);
    out.set(node.id, { rate, concurrency });
  }
  return out;
}
