/**
 * The critical path of a plan as partitions: the longest chain of partitions each of which
 * waits for the one before it. Its length is `planStats(plan).criticalPathLength`.
 */
import { RangeMax, type Plan } from './plan.ts';

export type PathStep = { node: string; partition: string };

export function criticalPath(plan: Plan): PathStep[] {
  const depths = new Map<string, Int32Array>();
  const maxima = new Map<string, RangeMax>();
  let deepest: { node: string; index: number; depth: number } | undefined;
  for (const node of plan.nodes) {
    const depth = new Int32Array(node.partitions.size);
    for (let j = 0; j < depth.length; j++) {
      let d = 0;
      for (const edge of node.upstream) d = Math.max(d, maxima.get(edge.node)!.max(edge.lo[j]!, edge.hi[j]!));
      depth[j] = d + 1;
      if (!deepest || d + 1 > deepest.depth) deepest = { node: node.id, index: j, depth: d + 1 };
    }
    depths.set(node.id, depth);
    maxima.set(node.id, new RangeMax(depth));
  }
  const path: PathStep[] = [];
  let step = deepest;
  while (step) {
    const node = plan.byId.get(step.node)!;
    path.push({ node: step.node, partition: node.partitions.key(step.index) });
    const { index, depth } = step;
    step = undefined;
    // Each step goes to another node (no node depends on itself), so a scan per step is cheap enough.
    for (const edge of node.upstream) {
      const upDepth = depths.get(edge.node)!;
      for (let i = edge.lo[index]!; i < edge.hi[index]! && !step; i++) {
        if (upDepth[i] === depth - 1) step = { node: edge.node, index: i, depth: depth - 1 };
      }
      if (step) break;
    }
  }
  return path.reverse();
}
