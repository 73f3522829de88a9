/**
 * The facts behind `--only-changed`, from the warehouse: what each partition's published
 * version was made from (its ledger row), and what it would be made from now (the node's
 * spec, the code version, and the upstream versions it would read). `core/only-changed.ts`
 * decides from them.
 */
import { partitionInputs } from '../core/inputs.ts';
import { changedInputs, decideRecompute, ownReason, skipOf, type InputDigest, type Making, type NodeDecision, type OwnReason } from '../core/only-changed.ts';
import type { Plan, PlanNode } from '../core/plan.ts';
import type { PartitionInput } from '../core/protocol.ts';
import { RangeSet } from '../core/ranges.ts';
import { inputDigest } from '../activities/warehouse/lineage.ts';
import { specHash } from '../activities/spec-hash.ts';
import type { LedgerRow, VersionRef, Warehouse } from '../activities/warehouse/types.ts';

/** Published (partition, version) pairs of one node, sorted by partition as the warehouse sorts keys. */
type Pointers = readonly VersionRef[];

function makingOf(row: LedgerRow): Making {
  return {
    transform: row.transform,
    params: row.params,
    codeVersion: row.codeVersion,
    specHash: row.specHash,
    inputs: row.inputs.map((i) => ({ node: i.node, digest: i.digest })),
  };
}

/** First index whose partition is >= key. */
function lowerBound(pointers: Pointers, key: string): number {
  let lo = 0;
  let hi = pointers.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pointers[mid]![0] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The versions the warehouse would pin for `input` now (as `Warehouse.pin` selects them). */
function pinnedNow(pointers: Pointers, input: PartitionInput): VersionRef[] {
  if (input.all) return [...pointers];
  if (input.keys) {
    const keys = new Set(input.keys);
    return pointers.filter(([partition]) => keys.has(partition));
  }
  return pointers.slice(lowerBound(pointers, input.from), lowerBound(pointers, `${input.to}\u0000`));
}

/** Digests of what partition `index` would read now; inputs shared by many partitions (mapping all) are hashed once. */
function inputsNow(node: PlanNode, index: number, pointers: ReadonlyMap<string, Pointers>, cache: Map<string, string>): InputDigest[] {
  return partitionInputs(node, index).map((input) => {
    const key = `${input.node}\u0000${input.from}\u0000${input.to}\u0000${input.all ? '*' : input.keys ? `[${input.keys.join(',')}]` : ''}`;
    let digest = cache.get(key);
    if (digest === undefined) {
      digest = inputDigest(pinnedNow(pointers.get(input.node) ?? [], input));
      cache.set(key, digest);
    }
    return { node: input.node, digest };
  });
}

/** A count of partitions by value. */
export type Tally = Array<{ value: string | null; partitions: number }>;

/** What changed for a node's partitions that run for reasons of their own: what their published versions were made from, against now. */
export type ChangeDetails = {
  spec: { now: string; was: Tally };
  codeVersion: { now: string; was: Tally };
  /** Upstream nodes whose versions as read changed, with how many partitions read changed versions of each. */
  inputs: Array<{ node: string; partitions: number }>;
};

function tally(values: Map<string | null, number>): Tally {
  return [...values].map(([value, partitions]) => ({ value, partitions })).sort((a, b) => b.partitions - a.partitions || String(a.value).localeCompare(String(b.value)));
}

export type Changes = {
  decisions: Map<string, NodeDecision>;
  /** By node: what changed (`plan --explain --only-changed`). */
  details: Map<string, ChangeDetails>;
  /**
   * Whether the published versions' ledger rows record a spec hash, so that a change of a
   * node's SQL or checks is seen too; without it only the transform and parameters are compared.
   */
  specHashRecorded: boolean;
};

/**
 * Which partitions of the plan run again and which keep their published versions, from the
 * warehouse's ledger and published pointers. `codeVersion` is the workers' code version.
 */
export async function changedPartitions(plan: Plan, warehouse: Pick<Warehouse, 'publishedRows'>, codeVersion: string): Promise<Changes> {
  let rowsSeen = 0;
  let rowsHashed = 0;
  const pointers = new Map<string, Pointers>();
  const own = new Map<string, Partial<Record<OwnReason, RangeSet>>>();
  const details = new Map<string, ChangeDetails>();
  for (const node of plan.nodes) {
    const rows = await warehouse.publishedRows(node.id);
    pointers.set(node.id, rows.map((r): VersionRef => [r.partition, r.version]));
    const byKey = new Map(rows.map((r) => [r.partition, r]));
    rowsSeen += rows.length;
    rowsHashed += rows.filter((r) => r.specHash !== null).length;
    const base = { transform: node.spec.transform, params: node.spec.params, codeVersion, specHash: specHash(node.spec) };
    const cache = new Map<string, string>();
    const reasons: Partial<Record<OwnReason, RangeSet>> = {};
    const specs = new Map<string | null, number>();
    const codes = new Map<string | null, number>();
    const inputs = new Map<string, number>();
    for (let j = 0; j < node.partitions.size; j++) {
      const row = byKey.get(node.partitions.key(j));
      const now = { ...base, inputs: row ? inputsNow(node, j, pointers, cache) : [] };
      const was = row ? makingOf(row) : null;
      const reason = ownReason(was, now);
      if (reason) (reasons[reason] ??= new RangeSet()).add(j);
      if (reason === 'spec') specs.set(row!.specHash, (specs.get(row!.specHash) ?? 0) + 1);
      if (reason === 'code') codes.set(row!.codeVersion, (codes.get(row!.codeVersion) ?? 0) + 1);
      if (reason === 'inputs') for (const up of changedInputs(was!.inputs, now.inputs)) inputs.set(up, (inputs.get(up) ?? 0) + 1);
    }
    own.set(node.id, reasons);
    details.set(node.id, {
      spec: { now: base.specHash, was: tally(specs) },
      codeVersion: { now: codeVersion, was: tally(codes) },
      inputs: [...inputs].map(([up, partitions]) => ({ node: up, partitions })).sort((a, b) => a.node.localeCompare(b.node)),
    });
  }
  return { decisions: decideRecompute(plan, own), details, specHashRecorded: rowsSeen > 0 && rowsHashed === rowsSeen };
}

/** What `plan --only-changed` and `start --only-changed` report: per node, how many partitions run and why. */
export function changeSummary(plan: Plan, changes: Changes, context: { warehouse: string; codeVersion: string; /** No --code-version nor BACKFILL_CODE_VERSION: the package's own was assumed. */ codeVersionDefaulted?: boolean }) {
  const nodes = plan.nodes.map((node) => {
    const decision = changes.decisions.get(node.id)!;
    return { id: node.id, partitions: node.partitions.size, toRun: decision.run.size, skip: decision.skip.size, reasons: decision.reasons };
  });
  // The code versions the partitions counted `code changed` were made with, over every node.
  const was = new Map<string | null, number>();
  for (const details of changes.details.values()) for (const w of details.codeVersion.was) was.set(w.value, (was.get(w.value) ?? 0) + w.partitions);
  return {
    ...context,
    ...(was.size > 0 ? { codeVersionWas: tally(was) } : {}),
    compared: changes.specHashRecorded ? 'transform, sql, params, checks, code version, input versions' : 'transform, params, code version, input versions',
    totalToRun: nodes.reduce((sum, n) => sum + n.toRun, 0), totalSkipped: nodes.reduce((sum, n) => sum + n.skip, 0),
    nodes,
  };
}

export type ChangeSummary = ReturnType<typeof changeSummary>;

/**
 * `--only-changed`: which partitions of the plan run again, from the ledger of the warehouse at
 * `location` (default: the warehouse's own), for workers of `codeVersion`.
 */
export async function onlyChanged(plan: Plan, options: { warehouse?: string | undefined; codeVersion?: string | undefined }): Promise<{ summary: ChangeSummary; skip: ReturnType<typeof skipOf>; changes: Changes }> {
  const [{ openExistingWarehouse }, { defaultCodeVersion }] = await Promise.all([import('./existing-warehouse.ts'), import('../host/package.ts')]);
  // No warehouse there is a wrong location far more often than a first run: running everything on a typo would be costly.
  const warehouse = await openExistingWarehouse(options.warehouse, '--only-changed', 'on a first run, when nothing is published yet, leave out --only-changed (every partition runs)');
  try {
    const version = options.codeVersion ?? defaultCodeVersion();
    const changes = await changedPartitions(plan, warehouse, version);
    const context = { warehouse: warehouse.location, codeVersion: version, ...(options.codeVersion === undefined ? { codeVersionDefaulted: true } : {}) };
    return { summary: changeSummary(plan, changes, context), skip: skipOf(changes.decisions), changes };
  } finally {
    await warehouse.close();
  }
}
