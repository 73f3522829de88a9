/**
 * Property tests of the partition model against a brute-force reference with a calendar of its
 * own: plan edges, what partitions read (partitionInputs), readiness across JSON carries and
 * failures, plan stats, the critical path, --only-changed's closure and plan --explain.
 */
import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { criticalPath } from '../../core/critical-path.ts';
import { explainPlan } from '../../core/explain.ts';
import { partitionInputs } from '../../core/inputs.ts';
import { decideRecompute } from '../../core/only-changed.ts';
import { expandPlan, planStats, type Plan } from '../../core/plan.ts';
import { Readiness } from '../../core/readiness.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec, type PartitionRange } from '../../core/spec.ts';

const H = 3_600_000;
const D = 24 * H;

// ---- an independent calendar ----
type G = 'hour' | 'day' | 'week' | 'month';
function refFloor(ms: number, g: G): number {
  const d = new Date(ms);
  switch (g) {
    case 'hour':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
    case 'day':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case 'week': {
      const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      const dow = (new Date(day).getUTCDay() + 6) % 7; // Monday 0
      return day - dow * D;
    }
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
}
function refNext(p: number, g: G): number {
  const d = new Date(p);
  switch (g) {
    case 'hour':
      return p + H;
    case 'day':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
    case 'week':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 7);
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
}
function refKey(p: number, g: G): string {
  const d = new Date(p);
  const ymd = d.toISOString().slice(0, 10);
  switch (g) {
    case 'hour':
      return `${ymd}T${d.toISOString().slice(11, 13)}`;
    case 'day':
      return ymd;
    case 'month':
      return ymd.slice(0, 7);
    case 'week': {
      const thu = new Date(p + 3 * D);
      const y = thu.getUTCFullYear();
      const jan1 = Date.UTC(y, 0, 1);
      const w = Math.floor((thu.getTime() - jan1) / D / 7) + 1;
      return `${y}-W${String(w).padStart(2, '0')}`;
    }
  }
}
function refPeriods(start: number, end: number, g: G): number[] {
  const out: number[] = [];
  for (let p = refFloor(start, g); p < end; p = refNext(p, g)) out.push(p);
  return out;
}

type NodeDef = { id: string; grain: G | 'static'; start: number; end: number; keys: string[]; deps: Array<{ node: string; mapping: unknown }> };

function allKeys(up: NodeDef): string[] {
  return up.grain === 'static' ? up.keys : refPeriods(up.start, up.end, up.grain).map((p) => refKey(p, up.grain as G));
}

/** Which upstream keys (of its own whole partitions) one downstream partition needs. */
function refNeeds(down: NodeDef, downPeriod: number | string, up: NodeDef, mapping: unknown): string[] {
  const upAll = allKeys(up);
  return refNamed(down, downPeriod, up, mapping).filter((k) => upAll.includes(k));
}

/** Which upstream keys one downstream partition's mapping names, the upstream node's partitions or not. */
function refNamed(down: NodeDef, downPeriod: number | string, up: NodeDef, mapping: unknown): string[] {
  if (mapping === 'all') return allKeys(up);
  if (down.grain === 'static') return [downPeriod as string];
  const dg = down.grain;
  const ug = up.grain as G;
  const ds = downPeriod as number;
  const de = refNext(ds, dg);
  if (mapping === 'identity') return [refKey(ds, ug)];
  let from = 0;
  let to = 0;
  if (typeof mapping === 'object') ({ from, to } = (mapping as { lag: { from: number; to: number } }).lag);
  // periods of the upstream grain from (containing ds) + from to (containing de-1) + to
  const first = refFloor(ds, ug);
  const last = refFloor(de - 1, ug);
  let lo = first;
  for (let i = 0; i < -from; i++) lo = refFloor(lo - 1, ug);
  for (let i = 0; i < from; i++) lo = refNext(lo, ug);
  let hi = last;
  for (let i = 0; i < to; i++) hi = refNext(hi, ug);
  for (let i = 0; i < -to; i++) hi = refFloor(hi - 1, ug);
  const out: string[] = [];
  for (let p = lo; p <= hi; p = refNext(p, ug)) out.push(refKey(p, ug));
  return out;
}

function inPlanKeys(n: NodeDef, range: PartitionRange): Array<number | string> {
  if (n.grain === 'static') return n.keys;
  const s = Math.max(n.start, range.from ?? -Infinity);
  const e = Math.min(n.end, range.to ?? Infinity);
  return s < e ? refPeriods(s, e, n.grain) : [];
}

const isoHour = (ms: number) => new Date(ms).toISOString().slice(0, 16);

function specOf(nodes: NodeDef[]) {
  return {
    name: 'p',
    nodes: nodes.map((n) => ({
      id: n.id,
      transform: 'noop',
      partitions: n.grain === 'static' ? { keys: n.keys } : { grain: n.grain, start: isoHour(n.start), end: isoHour(n.end) },
      dependsOn: n.deps.map((d) => ({ node: d.node, mapping: d.mapping })),
    })),
  };
}

const BASES = ['2020-12-20', '2015-12-20', '2024-02-20', '2100-02-20', '2026-12-25', '2021-12-27'].map((s) => Date.parse(`${s}T00:00:00Z`));

const nodeArb = fc.record({
  grain: fc.constantFrom<G | 'static'>('hour', 'day', 'day', 'week', 'month', 'static'),
  startOff: fc.integer({ min: 0, max: 40 * 24 }), // hours
  len: fc.integer({ min: 1, max: 50 * 24 }),
  keys: fc.subarray(['a', 'b', 'c', 'd'], { minLength: 1 }),
  deps: fc.array(
    fc.record({
      on: fc.nat(),
      mapping: fc.oneof(
        fc.constantFrom<unknown>(undefined, 'identity', 'window', 'all'),
        fc.tuple(fc.integer({ min: -8, max: 3 }), fc.integer({ min: 0, max: 6 })).map(([f, w]) => ({ lag: { from: f, to: f + w } })),
      ),
    }),
    { maxLength: 2 },
  ),
});

const caseArb = fc.record({
  base: fc.constantFrom(...BASES),
  nodes: fc.array(nodeArb, { minLength: 1, maxLength: 4 }),
  from: fc.option(fc.integer({ min: 0, max: 60 * 24 }), { nil: undefined }),
  len: fc.option(fc.integer({ min: 1, max: 30 * 24 }), { nil: undefined }),
  order: fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
  carry: fc.array(fc.boolean(), { maxLength: 64 }),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function buildCase(c: Case): { defs: NodeDef[]; plan: Plan; range: PartitionRange } | null {
  const defs: NodeDef[] = c.nodes.map((n, i) => {
    const start = c.base + n.startOff * H;
    return {
      id: `n${i}`,
      grain: n.grain,
      start,
      end: start + (n.grain === 'hour' ? 1 + (n.len % 96) : n.len) * H,
      keys: n.keys,
      deps: i === 0 ? [] : [...new Map(n.deps.map((d) => [`n${d.on % i}`, d.mapping])).entries()].map(([node, mapping]) => ({ node, mapping })),
    };
  });
  // Mappings that do not fit the grains become one that does.
  const nests = (a: string, b: string) => a === b || a === 'hour' || (a === 'day' && b !== 'hour');
  for (const d of defs) {
    d.deps = d.deps.map(({ node, mapping }) => {
      const up = defs.find((x) => x.id === node)!;
      const stat = d.grain === 'static' || up.grain === 'static';
      const fit = stat ? d.grain === up.grain : nests(d.grain, up.grain) || nests(up.grain, d.grain);
      if (mapping === 'all') return { node, mapping };
      if (!fit) return { node, mapping: 'all' };
      if (mapping === 'identity' && d.grain !== up.grain) return { node, mapping: undefined };
      if (stat && mapping !== 'identity') return { node, mapping: undefined };
      return { node, mapping };
    });
  }
  let spec;
  try {
    spec = resolveSpec(specOf(defs.map((d) => ({ ...d, deps: d.deps.map((x) => (x.mapping === undefined ? { node: x.node, mapping: undefined } : x)) }))));
  } catch {
    return null;
  }
  // take resolved mappings
  spec.nodes.forEach((n, i) => (defs[i]!.deps = n.dependsOn.map((d) => ({ node: d.node, mapping: d.mapping }))));
  const range: PartitionRange = {};
  if (c.from !== undefined) range.from = c.base + c.from * H;
  if (c.len !== undefined) range.to = (range.from ?? c.base) + c.len * H;
  const plan = expandPlan(spec, range);
  if (plan.totalPartitions === 0) return null;
  return { defs, plan, range };
}

/** Runs `check` on `runs` random cases that make a plan (`buildCase` gives up on some). */
function forEachCase(runs: number, check: (built: NonNullable<ReturnType<typeof buildCase>>, c: Parameters<typeof buildCase>[0]) => void): void {
  fc.assert(
    fc.property(caseArb, (c) => {
      const built = buildCase(c);
      if (built) check(built, c);
    }),
    { numRuns: runs },
  );
}

describe('plan edges agree with a brute-force mapping', () => {
  it('every partition waits for exactly the in-range upstream partitions it maps to', () => {
    forEachCase(3000, (built) => {
      const { defs, plan, range } = built;
      const byId = new Map(defs.map((d) => [d.id, d]));
      for (const node of plan.nodes) {
        const def = byId.get(node.id)!;
        const mine = inPlanKeys(def, range);
        expect(node.partitions.keys(), `${node.id} keys`).toEqual(mine.map((p) => (typeof p === 'string' ? p : refKey(p, def.grain as G))));
        for (const edge of node.upstream) {
          const up = byId.get(edge.node)!;
          const upInPlan = new Set(inPlanKeys(up, range).map((p) => (typeof p === 'string' ? p : refKey(p, up.grain as G))));
          mine.forEach((p, j) => {
            const want = refNeeds(def, p, up, edge.mapping).filter((k) => upInPlan.has(k));
            const got = edge.source.keys(edge.lo[j]!, edge.hi[j]!);
            expect(got, `${node.id}[${node.partitions.key(j)}] <- ${edge.node} ${JSON.stringify(edge.mapping)}`).toEqual(want);
          });
        }
      }
    });
  });
});

describe('what a partition reads agrees with a brute-force mapping', () => {
  it('a time upstream: every period its mapping names; a static one: its key if the node has it, or every key for all', () => {
    forEachCase(1500, (built) => {
      const { defs, plan, range } = built;
      const byId = new Map(defs.map((d) => [d.id, d]));
      for (const node of plan.nodes) {
        const def = byId.get(node.id)!;
        inPlanKeys(def, range).forEach((p, j) => {
          const inputs = partitionInputs(node, j);
          expect(inputs.map((i) => i.node)).toEqual(node.upstream.map((e) => e.node));
          node.upstream.forEach((edge, k) => {
            const up = byId.get(edge.node)!;
            const input = inputs[k]!;
            const where = `${node.id}[${node.partitions.key(j)}] <- ${edge.node} ${JSON.stringify(edge.mapping)}`;
            if (up.grain !== 'static') {
              const named = refNamed(def, p, up, edge.mapping);
              expect({ from: input.from, to: input.to, keys: input.keys, all: input.all }, where).toEqual({ from: named[0], to: named[named.length - 1], keys: undefined, all: undefined });
            } else if (edge.mapping === 'all') {
              expect(input.all, where).toBe(true);
            } else {
              expect(input.keys, where).toEqual(refNeeds(def, p, up, edge.mapping));
            }
          });
        });
      }
    });
  });
});

describe('readiness agrees with a brute-force reference, across JSON carries', () => {
  it('releases a partition exactly when all it needs in range is done, and every partition in the end', () => {
    forEachCase(1500, (built, c) => {
      const { plan } = built;
      let r = new Readiness(plan);
      const released = new Map<string, Set<number>>(plan.nodes.map((n) => [n.id, new Set()]));
      const done = new Map<string, Set<number>>(plan.nodes.map((n) => [n.id, new Set()]));
      const depsDone = (id: string, j: number) =>
        plan.byId.get(id)!.upstream.every((e) => {
          for (let i = e.lo[j]!; i < e.hi[j]!; i++) if (!done.get(e.node)!.has(i)) return false;
          return true;
        });
      const take = (m: Map<string, RangeSet>) => {
        for (const [id, set] of m) {
          for (const j of set) {
            expect(released.get(id)!.has(j), `${id}[${j}] released twice`).toBe(false);
            expect(depsDone(id, j), `${id}[${j}] released before its upstream is done`).toBe(true);
            released.get(id)!.add(j);
          }
        }
      };
      take(r.releaseAll());
      let step = 0;
      for (;;) {
        const inHands: Array<[string, number]> = [];
        for (const [id, s] of released) for (const j of s) if (!done.get(id)!.has(j)) inHands.push([id, j]);
        // eager: nothing unreleased has its upstream done
        for (const node of plan.nodes)
          for (let j = 0; j < node.partitions.size; j++)
            if (!released.get(node.id)!.has(j)) expect(depsDone(node.id, j), `${node.id}[${j}] ready but not released`).toBe(false);
        if (inHands.length === 0) break;
        const pick = c.order[step % c.order.length]!;
        const [id, j] = inHands[pick % inHands.length]!;
        // a batch: j and maybe its neighbours in hand
        const batch = new RangeSet().add(j);
        done.get(id)!.add(j);
        take(r.markDone(id, batch));
        if (c.carry[step % Math.max(1, c.carry.length)]) {
          const json = JSON.parse(JSON.stringify(r.toJSON()));
          r = new Readiness(plan, json);
          take(r.releaseAll());
        }
        step++;
      }
      for (const node of plan.nodes) expect(done.get(node.id)!.size, `${node.id} all done`).toBe(node.partitions.size);
    });
  });
});

describe('plan stats, critical path, only-changed and explain against brute force', () => {
  it('agree', () => {
    fc.assert(
      fc.property(caseArb, fc.array(fc.nat(), { maxLength: 8 }), (c, picks) => {
        const built = buildCase(c);
        if (!built) return;
        const { plan, defs, range } = built;
        // depths by brute force
        const depth = new Map<string, number[]>();
        for (const node of plan.nodes) {
          const d: number[] = [];
          for (let j = 0; j < node.partitions.size; j++) {
            let m = 0;
            for (const e of node.upstream) for (let i = e.lo[j]!; i < e.hi[j]!; i++) m = Math.max(m, depth.get(e.node)![i]!);
            d.push(m + 1);
          }
          depth.set(node.id, d);
        }
        const all = [...depth.values()].flat();
        const crit = Math.max(0, ...all);
        const hist = new Map<number, number>();
        for (const v of all) hist.set(v, (hist.get(v) ?? 0) + 1);
        const stats = planStats(plan);
        expect(stats.criticalPathLength).toBe(crit);
        expect(stats.maxWidth).toBe(Math.max(0, ...hist.values()));
        const path = criticalPath(plan);
        expect(path.length).toBe(crit);
        // only-changed closure
        const own = new Map<string, { spec: RangeSet }>();
        plan.nodes.forEach((n, k) => {
          const s = new RangeSet();
          const p = picks[k];
          if (p !== undefined && n.partitions.size > 0) s.add(p % n.partitions.size);
          own.set(n.id, { spec: s });
        });
        const decisions = decideRecompute(plan, own);
        const runRef = new Map<string, Set<number>>();
        for (const node of plan.nodes) {
          const run = new Set<number>([...own.get(node.id)!.spec]);
          for (let j = 0; j < node.partitions.size; j++)
            for (const e of node.upstream) for (let i = e.lo[j]!; i < e.hi[j]!; i++) if (runRef.get(e.node)!.has(i)) run.add(j);
          runRef.set(node.id, run);
          expect([...decisions.get(node.id)!.run]).toEqual([...run].sort((a, b) => a - b));
        }
        // explain: waiting counts, readsOutside against brute force of full reads
        const ex = explainPlan(plan, range);
        const byId = new Map(defs.map((d) => [d.id, d]));
        for (const node of plan.nodes) {
          const nex = ex.nodes.find((x) => x.id === node.id)!;
          node.upstream.forEach((e, k) => {
            let waiting = 0;
            for (let j = 0; j < node.partitions.size; j++) if (e.hi[j]! > e.lo[j]!) waiting++;
            expect(nex.upstream[k]!.waiting).toBe(waiting);
            const up = byId.get(e.node)!;
            const upIn = new Set(inPlanKeys(up, range).map((p) => (typeof p === 'string' ? p : refKey(p, up.grain as G))));
            const outside = new Set<string>();
            const def = byId.get(node.id)!;
            inPlanKeys(def, range).forEach((p) => {
              for (const k2 of refNeeds(def, p, up, e.mapping)) if (!upIn.has(k2)) outside.add(k2);
            });
            expect(nex.upstream[k]!.readsOutside.partitions, `${node.id} <- ${e.node} ${JSON.stringify(e.mapping)} outside`).toBe(outside.size);
            // Named, but not one of the upstream node's partitions: each counted once.
            const upAll = new Set(allKeys(up));
            const missing = new Set<string>();
            inPlanKeys(def, range).forEach((p) => {
              for (const k2 of refNamed(def, p, up, e.mapping)) if (!upAll.has(k2)) missing.add(k2);
            });
            expect(nex.upstream[k]!.missing, `${node.id} <- ${e.node} ${JSON.stringify(e.mapping)} missing`).toBe(missing.size);
          });
        }
      }),
      { numRuns: 1500 },
    );
  });
});

describe('readiness with failures, retries and carries', () => {
  it('blocked, counts and the end state agree with brute force', () => {
    fc.assert(
      fc.property(caseArb, fc.array(fc.nat(9), { minLength: 1, maxLength: 64 }), (c, fates) => {
        const built = buildCase(c);
        if (!built) return;
        const { plan } = built;
        let r = new Readiness(plan);
        const released = new Map<string, Set<number>>(plan.nodes.map((n) => [n.id, new Set()]));
        const done = new Map<string, Set<number>>(plan.nodes.map((n) => [n.id, new Set()]));
        const failed = new Map<string, Set<number>>(plan.nodes.map((n) => [n.id, new Set()]));
        const needs = (id: string, j: number) => plan.byId.get(id)!.upstream.flatMap((e) => Array.from({ length: e.hi[j]! - e.lo[j]! }, (_, k) => [e.node, e.lo[j]! + k] as const));
        const take = (m: Map<string, RangeSet>) => {
          for (const [id, set] of m)
            for (const j of set) {
              expect(released.get(id)!.has(j) && !failed.get(id)!.has(j), `${id}[${j}] twice`).toBe(false);
              for (const [u, i] of needs(id, j)) expect(done.get(u)!.has(i), `${id}[${j}] early`).toBe(true);
              released.get(id)!.add(j);
            }
        };
        take(r.releaseAll());
        let step = 0;
        let retries = 0;
        for (;;) {
          // brute blocked
          const blocked = new Map<string, Set<number>>();
          for (const node of plan.nodes) {
            const b = new Set<number>();
            for (let j = 0; j < node.partitions.size; j++) {
              if (released.get(node.id)!.has(j)) continue;
              if (needs(node.id, j).some(([u, i]) => failed.get(u)!.has(i) || blocked.get(u)!.has(i))) b.add(j);
            }
            blocked.set(node.id, b);
            expect([...r.blocked(node.id)], `${node.id} blocked`).toEqual([...b].sort((x, y) => x - y));
            const cts = r.counts(node.id);
            expect(cts.done).toBe(done.get(node.id)!.size);
            expect(cts.failed).toBe(failed.get(node.id)!.size);
            expect(cts.done + cts.failed + cts.inHands + cts.blocked + cts.waiting).toBe(node.partitions.size);
          }
          const inHands: Array<[string, number]> = [];
          for (const [id, s] of released) for (const j of s) if (!done.get(id)!.has(j) && !failed.get(id)!.has(j)) inHands.push([id, j]);
          expect(r.settled).toBe(inHands.length === 0);
          if (inHands.length === 0) {
            const anyFailed = [...failed.values()].some((s) => s.size > 0);
            if (!anyFailed || retries > 3) break;
            retries++;
            const back = r.retryFailed();
            for (const [id, set] of back) for (const j of set) failed.get(id)!.delete(j);
            continue;
          }
          const fate = fates[step % fates.length]!;
          const [id, j] = inHands[(c.order[step % c.order.length]! + step) % inHands.length]!;
          if (fate === 0 && retries < 3) {
            failed.get(id)!.add(j);
            r.markFailed(id, new RangeSet().add(j));
          } else {
            done.get(id)!.add(j);
            take(r.markDone(id, new RangeSet().add(j)));
          }
          if (c.carry[step % Math.max(1, c.carry.length)]) {
            r = new Readiness(plan, JSON.parse(JSON.stringify(r.toJSON())));
            take(r.releaseAll());
          }
          step++;
        }
      }),
      { numRuns: 600 },
    );
  });
});
