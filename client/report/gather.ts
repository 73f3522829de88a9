/**
 * Gathers what a backfill did, for its report: its input and control history from every
 * run of the parent workflow (`backfill/<id>`, which continues as new), its progress, the
 * ledger rows it wrote and the versions they replaced, and the throttles from the runs of
 * its node workflows (`backfill/<id>/<node>`; read only for nodes that were throttled).
 */
import { knownLink } from '../web-ui.ts';
import type { temporal } from '@temporalio/proto';
import { closedState } from '../ended.ts';
import { noWarehouse } from '../existing-warehouse.ts';
import { keptPartitions, otherWarehouse } from '../other-warehouse.ts';
import { diffSummary } from '../../activities/warehouse/staging.ts';
import { MAX_CHANGES_PAGE } from '../../activities/warehouse/changes.ts';
import type { ChangeCursor, ChangesPage, LedgerRow, VersionRef, Warehouse } from '../../activities/warehouse/types.ts';
import { criticalPath } from '../../core/critical-path.ts';
import { diffKeys } from '../../core/diff-keys.ts';
import { BackfillError } from '../../core/errors.ts';
import { grainOf, describeMapping } from '../../core/mapping.ts';

import { expandPlan, planStats, type Plan } from '../../core/plan.ts';
import type { BackfillInput, NodeInput, Progress } from '../../core/protocol.ts';
import { RangeSet } from '../../core/ranges.ts';
import { rollbackWorkflowId, type UndoneCount } from '../../core/rollback.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import { discardWorkflowId } from '../../core/staged.ts';
import { auditOfHistory, type AuditRecord } from '../audit.ts';
import { nodeTerminations } from '../node-terminations.ts';
import { backfillWorkflowId, nodeWorkflowId } from '../../workflows/definitions.ts';
import type { BackfillClient } from '../backfill-client.ts';
import { visibilityLiteral } from '../visibility.ts';
import { endSpec, pauseToggles, pausedSpans, reportedWork, runInfo, throttleEvents, throttledSpans, type Decode, type ReportedWork, type RunInfo, type ThrottleEvent } from './history.ts';
import { fixedFailures } from './failures.ts';
import { REPORT_VERSION, type NodeReport, type PlanReport, type Report, type StagedReport } from './model.ts';
import { reportActions } from './actions.ts';
import { ledgerFigures, versionKey } from './summarize.ts';
import { buildTimeline } from './timeline.ts';
import { mapLimit } from '../map-limit.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
/** A run, and what `runsOf` kept of its history (the events themselves are let go). */
type Run<Input, Kept> = RunInfo<Input> & { kept: Kept };

export type GatherOptions = {
  /** The clock, for a backfill still running. */
  now?: number;
};

/** Histories fetched at once, at most. */
const FETCHES = 8;

/**
 * Every run of a workflow id started since `sinceMs` (visibility lists them; the latest run
 * is added should visibility lag behind), oldest first.
 */
async function runsOf<Input, Kept>(
  client: BackfillClient,
  workflowId: string,
  decode: Decode,
  keep: (events: HistoryEvent[]) => Kept,
  options: { latestRunId?: string; sinceMs?: number } = {},
): Promise<Array<Run<Input, Kept>>> {
  const runIds = new Set<string>(options.latestRunId ? [options.latestRunId] : []);
  for await (const execution of client.client.workflow.list({ query: `WorkflowId = ${visibilityLiteral(workflowId)}` })) {
    if (execution.startTime.getTime() >= (options.sinceMs ?? -Infinity)) runIds.add(execution.runId);
  }
  const runs = await mapLimit([...runIds], FETCHES, async (runId) => {
    const history = await client.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    return { ...runInfo<Input>(runId, events, decode), kept: keep(events) };
  });
  return runs.sort((a, b) => a.startMs - b.startMs);
}

/** What the report keeps of each parent run's history: its audit entries, a spec it ended carrying, and what its node workflows reported done and failed. */
type Kept = { audit: ReturnType<typeof auditOfHistory>; endSpec: ResolvedSpec | null; work: ReportedWork[] };

/** The spec a run last ran with: one that replaced its input's while it ran, else its input's. */
const specOf = (run: Run<BackfillInput, Kept>) => run.kept.endSpec ?? run.input?.spec;

/**
 * The spec the backfill run last ran with (`retry-failed --spec` and `resume --spec` replace it),
 * and a note saying when it was replaced.
 */
function latestSpec(runs: ReadonlyArray<Run<BackfillInput, Kept>>, first: ResolvedSpec, notes: string[]): ResolvedSpec {
  const spec = specOf(runs[runs.length - 1]!) ?? first;
  const same = (other: ResolvedSpec | undefined) => other === undefined || JSON.stringify(other) === JSON.stringify(first);
  if (same(spec)) return spec;
  const changed = runs.find((run) => !same(run.input?.spec)) ?? runs.find((run) => !same(run.kept.endSpec ?? undefined))!;
  const during = same(changed.input?.spec) ? 'during the run started' : 'by the run started';
  notes.push(`The spec was replaced (resume or retry-failed --spec) ${during} ${new Date(changed.startMs).toISOString()}: this report shows the spec the backfill last ran with.`);
  return spec;
}

/** The run key a parent run writes versions under: carried over by continue-as-new and resume, else its chain's first run id. */
const runKeyOf = (run: RunInfo<BackfillInput>) => run.input?.carry?.runKey ?? run.firstRunId;

function stateOf(progress: Progress | null, status: string): Report['backfill']['state'] {
  if (progress) return progress.state;
  if (status === 'RUNNING') return 'running';
  if (status === 'CANCELLED' || status === 'FAILED' || status === 'TERMINATED' || status === 'TIMED_OUT') return closedState(status);
  return 'unknown';
}

function planReport(plan: Plan): PlanReport {
  const stats = planStats(plan);
  return {
    totalPartitions: stats.totalPartitions,
    criticalPathLength: stats.criticalPathLength,
    maxWidth: stats.maxWidth,
    criticalPath: criticalPath(plan),
    nodes: plan.nodes.map((node) => ({
      id: node.id,
      grain: grainOf(node.spec.partitions),
      partitions: node.partitions.size,
      first: node.partitions.size > 0 ? node.partitions.key(0) : null,
      last: node.partitions.size > 0 ? node.partitions.key(node.partitions.size - 1) : null,
      transform: node.spec.transform,
      dependsOn: node.upstream.map((edge) => ({ node: edge.node, mapping: describeMapping(edge.mapping) })),
    })),
  };
}

/** The versions this backfill's published versions replaced, by versionKey. */
async function replacedVersions(warehouse: Warehouse, rows: readonly LedgerRow[]): Promise<Map<string, LedgerRow>> {
  const wanted = new Map<string, VersionRef[]>();
  for (const row of rows) {
    if (row.status === 'published' && row.previousVersion !== null) {
      (wanted.get(row.node) ?? wanted.set(row.node, []).get(row.node)!).push([row.partition, row.previousVersion]);
    }
  }
  const previous = new Map<string, LedgerRow>();
  for (const [node, versions] of wanted) {
    for (const row of await warehouse.ledgerVersions(node, versions)) previous.set(versionKey(row.node, row.partition, row.version), row);
  }
  return previous;
}

/**
 * The partitions of the backfill that another backfill's rollback undid (its pointer moved off
 * the backfill's version, a forced rollback mostly), by rollback: read from the changes the
 * backfill made, as a rollback of it would see them.
 */
async function undoneByOtherRollbacks(warehouse: Warehouse, backfillId: string): Promise<UndoneCount[]> {
  const counts = new Map<string, UndoneCount>();
  let after: ChangeCursor | null = null;
  do {
    const page: ChangesPage = await warehouse.changesBy(backfillId, { limit: MAX_CHANGES_PAGE, ...(after ? { after } : {}) });
    for (const change of page.changes) {
      const by = change.undoneBy;
      if (!by || by.backfillId === backfillId) continue;
      const known = counts.get(by.rollbackId) ?? { ...by, partitions: 0 };
      known.partitions++;
      counts.set(by.rollbackId, known);
    }
    after = page.next;
  } while (after !== null);
  return [...counts.values()];
}

/**
 * What a staged backfill's versions change, from its ledger rows: staged ones against what is
 * published now; once published, against the versions the publish replaced; compared by the
 * key columns of `spec`, the one the backfill last ran with. Null for a
 * backfill that staged nothing; a diff the warehouse refuses (a key column the dataset lacks)
 * becomes a note.
 */
async function stagedReport(warehouse: Warehouse, run: { backfillId: string; runKey: string }, input: BackfillInput, spec: ResolvedSpec, ledger: readonly LedgerRow[], notes: string[]): Promise<StagedReport | null> {
  if (input.stage !== true && !ledger.some((row) => row.staged)) return null;
  const phase = ledger.some((row) => row.status === 'staged') ? 'staged' : ledger.some((row) => row.status === 'published' && row.staged) ? 'published' : ledger.some((row) => row.status === 'discarded') ? 'discarded' : 'staged';
  try {
    const keys = diffKeys(spec.nodes);
    const summary = await diffSummary((page) => warehouse.diffStaged(run, page), keys, phase === 'published' ? 'published' : 'staged');
    return { phase, summary };
  } catch (error) {
    notes.push(`The staged versions could not be compared (${error instanceof Error ? error.message : String(error)}).`);
    return null;
  }
}

/** When each node was throttled, from its node workflow's runs of this backfill run (started since `sinceMs`). */
async function throttleTimes(
  client: BackfillClient,
  backfill: { id: string; runKey: string; sinceMs: number },
  plan: Plan,
  nodes: readonly string[],
  decode: Decode,
): Promise<Map<string, number[]>> {
  const times = new Map<string, number[]>();
  for (const node of nodes) {
    const runs = await runsOf<NodeInput, ThrottleEvent[]>(client, nodeWorkflowId(backfill.id, node), decode, (events) => throttleEvents(events, decode), { sinceMs: backfill.sinceMs });
    const events = runs.filter((run) => run.input?.runKey === backfill.runKey).flatMap((run) => run.kept);
    const partitions = plan.byId.get(node)!.partitions;
    times.set(node, events.filter((e) => e.index < partitions.size).map((e) => e.atMs));
  }
  return times;
}

/**
 * `warehouse`: the workers' warehouse, or `{ missing: location }` when none is there. Without one,
 * a backfill that ran no partition yet (refused, awaiting approval or its window) is reported from
 * its workflow history alone; any other is refused (`noWarehouse`), rather than reported as
 * having written nothing.
 */
export async function gatherReport(client: BackfillClient, warehouse: Warehouse | { missing: string }, backfillId: string, options: GatherOptions = {}): Promise<Report> {
  const now = options.now ?? Date.now();
  const latest = await client.describe(backfillId);
  const decode: Decode = (payload) => client.client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
  const workflowId = backfillWorkflowId(backfillId);
  // A spec a `resume --spec` sent to the run still running is in its carry, not yet in its history.
  const replaced = latest.status.name === 'RUNNING' ? await client.replacedSpec(backfillId) : null;
  const allRuns = (
    await runsOf<BackfillInput, Kept>(client, workflowId, decode, (events) => ({ audit: auditOfHistory(events, decode), endSpec: endSpec(events, decode), work: reportedWork(events, decode, (node) => nodeWorkflowId(backfillId, node)) }), { latestRunId: latest.runId })
  ).map((run) => (replaced && run.runId === latest.runId ? { ...run, kept: { ...run.kept, endSpec: replaced } } : run));
  const latestRun = allRuns.find((run) => run.runId === latest.runId)!;
  const runKey = runKeyOf(latestRun);
  // A rerun of the same id is another backfill run (a new run key): the report covers the latest one.
  const runs = allRuns.filter((run) => runKeyOf(run) === runKey);
  const input = runs[0]!.input;
  if (!input) throw new BackfillError('failed', `cannot read the input of backfill '${backfillId}' from its history`);

  const notes: string[] = [];
  const spec = latestSpec(runs, input.spec, notes);
  const plan = expandPlan(spec, input.range);
  const progress = await client.progress(backfillId).catch((error: unknown) => {
    notes.push(`Progress could not be read (${error instanceof Error ? error.message : String(error)}): "done" counts published partitions, failed and blocked are unknown.`);
    return null;
  });
  if ('missing' in warehouse) {
    if (progress === null || progress.done + progress.failed + progress.running > 0) {
      throw noWarehouse(warehouse.missing, 'report', 'only a backfill that ran no partition yet is reported without one');
    }
    notes.push(`No warehouse at ${warehouse.missing} (none was created): this backfill ran no partition yet, so the report comes from its workflow history alone.`);
  }
  const ofBackfill = 'missing' in warehouse ? [] : await warehouse.ledger({ backfillId });
  // The workflow says partitions were published, the ledger knows nothing of the backfill: another warehouse than the workers'.
  // Done counts the partitions --only-changed kept too, which published nothing.
  const publishedCount = progress === null ? 0 : progress.done - keptPartitions(plan, input.skip);
  if (!('missing' in warehouse) && ofBackfill.length === 0 && publishedCount > 0) throw otherWarehouse(backfillId, publishedCount, warehouse.location);
  const ledger = ofBackfill.filter((row) => row.runKey === runKey);
  const previous = 'missing' in warehouse ? new Map<string, LedgerRow>() : await replacedVersions(warehouse, ledger);
  const staged = 'missing' in warehouse ? null : await stagedReport(warehouse, { backfillId, runKey }, input, spec, ledger, notes);
  const location = 'missing' in warehouse ? warehouse.missing : warehouse.location;
  const throttled = progress ? progress.nodes.filter((n) => n.throttles > 0).map((n) => n.id) : plan.nodes.map((n) => n.id);
  const first = runs[0]!;
  const throttles = await throttleTimes(client, { id: backfillId, runKey, sinceMs: first.startMs }, plan, throttled, decode);

  const endMs = latestRun.endMs ?? now;
  const paces = (node: string) => runs.flatMap((run) => run.kept.work.flatMap((w) => (w.node === node && w.rate !== undefined ? [{ atMs: w.atMs, rate: w.rate }] : [])));
  const paused = pausedSpans(
    // Over all runs at once: a budget spent in one run holds the next one paused too.
    pauseToggles(runs.flatMap((run) => run.kept.audit)),
    endMs,
    input.carry?.paused ? { atMs: first.startMs } : null,
  );
  // Rollbacks, and the discard of what a cancelled staged backfill left, are workflows of their own.
  const ofWorkflow = (id: string) => runsOf<unknown, AuditRecord[]>(client, id, decode, (events) => auditOfHistory(events, decode).map((e) => ({ ...e, workflowId: id, runId: '' })), { sinceMs: first.startMs });
  const others = [...(await ofWorkflow(rollbackWorkflowId(backfillId))), ...(await ofWorkflow(discardWorkflowId(backfillId)))];
  // A node workflow terminated through Temporal: the backfill records nothing of it, its run's close event does.
  const terminations = await nodeTerminations(client, backfillId, first.startMs);
  const actions = reportActions([...runs.flatMap((run) => run.kept.audit.map((e) => ({ ...e, workflowId, runId: run.runId }))), ...others.flatMap((run) => run.kept), ...terminations]);
  // A staged (or discarded) version passed its checks like a published one: the timeline shows the work.
  const rows = ledger.map((row) => ({ node: row.node, partition: row.partition, status: row.status === 'failed_check' ? ('failed_check' as const) : ('published' as const), startMs: Date.parse(row.startedAt), endMs: Date.parse(row.finishedAt) }));
  const timeline = buildTimeline({
    nodes: plan.nodes.map((n) => n.id),
    rows,
    startMs: rows.reduce((min, r) => Math.min(min, r.startMs), first.startMs),
    endMs: rows.reduce((max, r) => Math.max(max, r.endMs), endMs),
    paused,
    // How long each node's pace stayed reduced after its throttles: the paces it reported to the parent say.
    throttled: plan.nodes.flatMap((n) => throttledSpans(throttles.get(n.id) ?? [], paces(n.id)).map((s) => ({ node: n.id, ...s }))),
    limitChanges: actions.filter((a) => a.limitChange).map((a) => ({ atMs: Date.parse(a.at), seq: a.seq, action: a.action, label: a.change })),
  });

  // The progress knows the failures still standing; every run's node reports know the ones a retry-failed fixed since.
  const fixed = fixedFailures(plan.nodes, runs.map((run) => run.kept.work));
  const byNode = new Map<string, LedgerRow[]>();
  for (const row of ledger) (byNode.get(row.node) ?? byNode.set(row.node, []).get(row.node)!).push(row);
  const nodes: NodeReport[] = plan.nodes.map((node) => {
    const figures = ledgerFigures(byNode.get(node.id) ?? [], previous);
    const p = progress?.nodes.find((n) => n.id === node.id);
    return {
      id: node.id,
      grain: grainOf(node.spec.partitions),
      transform: node.spec.transform,
      partitions: node.partitions.size,
      done: p?.done ?? figures.published,
      failed: p ? p.failed : null,
      blocked: p ? p.blocked : null,
      skipped: RangeSet.fromJSON(input.skip?.[node.id]).slice(0, node.partitions.size).size,
      ...figures,
      throttles: throttles.get(node.id)?.length ?? p?.throttles ?? 0,
      failures: (p?.failures ?? []).filter((f) => f.type !== 'CheckFailed').map((f) => ({ message: f.message, type: f.type, partitions: f.partitions, examples: f.examples })),
      fixedFailures: (fixed.get(node.id) ?? []).filter((f) => f.type !== 'CheckFailed'),
    };
  });
  const sum = (pick: (n: NodeReport) => number) => nodes.reduce((total, n) => total + pick(n), 0);
  const known = (pick: (n: NodeReport) => number | null) => (nodes.every((n) => pick(n) !== null) ? sum((n) => pick(n)!) : null);
  const codeVersions = [...new Set(ledger.map((r) => r.codeVersion))].sort();
  // A rollback moved its partitions back: the versions it published are no longer all the data.
  const restored = 'missing' in warehouse ? [] : await warehouse.rollbacks({ backfillId });
  const rolledBack =
    restored.length === 0
      ? null
      : {
          partitions: new Set(restored.map((r) => `${r.node}\u0000${r.partition}`)).size,
          lastAt: restored.reduce((last, r) => (r.at > last ? r.at : last), restored[0]!.at),
          stillPublished: ledger.filter((r) => r.status === 'published' && r.current).length,
        };
  const undoneByOthers = 'missing' in warehouse ? [] : await undoneByOtherRollbacks(warehouse, backfillId);
  if (ledger.length === 0 && !('missing' in warehouse)) notes.push(`The ledger of ${location} has no row of this backfill run: is it the warehouse the workers wrote to (--warehouse)?`);
  if (throttled.length > 0) notes.push(`Throttles read from the histories of ${throttled.join(', ')}.`);

  return {
    reportVersion: REPORT_VERSION,
    generatedAt: new Date(now).toISOString(),
    backfill: {
      id: backfillId,
      workflowId,
      namespace: client.namespace,
      runKey,
      state: stateOf(progress, latest.status.name),
      paused: progress?.paused ?? false,
      startedAt: new Date(first.startMs).toISOString(),
      endedAt: latestRun.endMs === null ? null : new Date(latestRun.endMs).toISOString(),
      runs: runs.length,
      uiUrl: knownLink(client, client.uiUrl(workflowId)),
    },
    spec,
    parameters: {
      from: input.range.from === undefined ? null : new Date(input.range.from).toISOString(),
      to: input.range.to === undefined ? null : new Date(input.range.to).toISOString(),
      rate: input.limits?.rate !== undefined ? input.limits.rate : spec.rate,
      concurrency: input.limits?.concurrency !== undefined ? input.limits.concurrency : spec.concurrency,
      onlyChanged: input.skip !== undefined,
      codeVersions,
      warehouse: location,
    },
    plan: planReport(plan),
    totals: {
      partitions: plan.totalPartitions,
      done: sum((n) => n.done),
      failed: known((n) => n.failed),
      blocked: known((n) => n.blocked),
      skipped: sum((n) => n.skipped),
      published: sum((n) => n.published),
      retried: sum((n) => n.retries.retried),
      publishedAfterFailing: sum((n) => n.fixedFailures.reduce((t, f) => t + f.partitions, 0)),
      throttles: sum((n) => n.throttles),
      failedChecks: sum((n) => n.failedChecks.reduce((t, g) => t + g.partitions, 0)),
    },
    nodes,
    staged,
    rolledBack,
    undoneByOthers,
    timeline,
    actions,
    notes,
  };
}
