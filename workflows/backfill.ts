/**
 * `backfillWorkflow`: the parent of a backfill (id `backfill/<backfillId>`).
 *
 * It expands the plan, starts one `nodeWorkflow` per node, and coordinates readiness at
 * the partition level: node workflows report what completed (batched signals); the parent
 * releases each downstream partition as soon as every upstream partition it needs is done
 * and hands it over in a batched signal. It owns the control surface (pause, resume,
 * rates, concurrency, retry) and forwards each node its share of the limits. It continues
 * as new before its history grows large; the node workflows live on across that.
 */
import {
  ParentClosePolicy,
  ChildWorkflowCancellationType,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { mergeFailures, withoutPartitions } from '../core/failures.ts';
import { TokenBucket, shareLimit } from '../core/pacing.ts';
import { initialRelease, type BackfillInputWithSkip } from '../core/only-changed.ts';
import { expandPlan, type PlanNode } from '../core/plan.ts';
import { progressOf } from '../core/progress.ts';
import {
  DEFAULT_TUNING,
  type BackfillCarry,
  type BackfillResult,
  type FailureGroup,
  type Limits,
  type NodeControl,
  type NodeOverrides,
  type NodeReport,
  type NodeReportState,
  type NodeSettings,
} from '../core/protocol.ts';
import { RangeSet } from '../core/ranges.ts';
import { Readiness } from '../core/readiness.ts';
import {
  BACKFILL_ID,
  BACKFILL_NODE,
  nodeControlSignal,
  nodeReportSignal,
  nodeWorkflowId,
  partitionsQuery,
  pauseSignal,
  pauseUpdate,
  progressQuery,
  resumeSignal,
  resumeUpdate,
  retryFailedSignal,
  retryFailedUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
  setRateSignal,
  setRateUpdate,
  type ControlState,
} from './definitions.ts';
import { nodeWorkflow } from './node.ts';

/** How long a cancelled backfill waits for its node workflows to wind down. */
const CANCEL_GRACE = '10 minutes';

type Outgoing = { ready: RangeSet; settingsDirty: boolean; finish: boolean };

export async function backfillWorkflow(input: BackfillInputWithSkip): Promise<BackfillResult> {
  const tuning = { ...DEFAULT_TUNING, ...input.tuning };
  const plan = expandPlan(input.spec, input.range);
  const info = workflowInfo();
  const carry = input.carry;
  const backfillId = input.backfillId;

  const runKey = carry?.runKey ?? info.firstExecutionRunId;
  const readiness = new Readiness(plan, carry?.readiness);
  let paused = carry?.paused ?? false;
  const limits: Limits = carry?.limits ?? {
    rate: input.limits?.rate !== undefined ? input.limits.rate : input.spec.rate,
    concurrency: input.limits?.concurrency !== undefined ? input.limits.concurrency : input.spec.concurrency,
  };
  const overrides: NodeOverrides = carry?.overrides ?? {};
  const reports: Record<string, NodeReportState> = carry?.reports ?? {};
  let failures: Record<string, FailureGroup[]> = carry?.failures ?? {};
  const runs = (carry?.runs ?? 0) + 1;
  const startedAt = carry?.startedAt ?? null;

  const outbox = new Map<string, Outgoing>(
    plan.nodes.map((n) => {
      const saved = carry?.outbox[n.id];
      return [n.id, { ready: RangeSet.fromJSON(saved?.ready), settingsDirty: saved?.settingsDirty ?? false, finish: false }];
    }),
  );
  const lastSettings = new Map<string, NodeSettings>(Object.entries(carry?.settings ?? {}));
  const sending = new Set<string>();
  const cancelledNodes = new Set<string>();
  const finishedNodes = new Set<string>();
  let controlDirty = true;

  const nodeLimits = (node: PlanNode): { rate: number | null; concurrency: number } => {
    const own = overrides[node.id] ?? {};
    return {
      rate: own.rate !== undefined ? own.rate : node.spec.rate,
      concurrency: own.concurrency ?? node.spec.concurrency,
    };
  };

  /** Each node's share of the backfill-wide limits, for the nodes that have work in hands. */
  const settingsFor = (): Map<string, Omit<NodeSettings, 'seq'>> => {
    const active = new Map(plan.nodes.map((n) => [n.id, readiness.hasInHands(n.id)]));
    const rates = shareLimit(limits.rate, plan.nodes.map((n) => ({ id: n.id, cap: nodeLimits(n).rate, active: active.get(n.id)! })));
    const slots = shareLimit(
      limits.concurrency,
      plan.nodes.map((n) => ({ id: n.id, cap: nodeLimits(n).concurrency, active: active.get(n.id)! })),
      true,
    );
    const out = new Map<string, Omit<NodeSettings, 'seq'>>();
    for (const node of plan.nodes) {
      const own = nodeLimits(node);
      const previous = lastSettings.get(node.id);
      // An idle node keeps its last share; it gets a fresh one with its next ready partitions.
      const rate = rates.has(node.id) ? rates.get(node.id)! : previous ? previous.rate : minRate(own.rate, limits.rate);
      const concurrency = slots.has(node.id)
        ? (slots.get(node.id) as number)
        : previous
          ? previous.concurrency
          : Math.min(own.concurrency, limits.concurrency ?? Infinity);
      out.set(node.id, { rate, burst: node.spec.burst ?? TokenBucket.defaultBurst(rate), concurrency, paused });
    }
    return out;
  };

  const refreshSettings = () => {
    for (const [id, next] of settingsFor()) {
      const prev = lastSettings.get(id);
      if (prev && prev.rate === next.rate && prev.burst === next.burst && prev.concurrency === next.concurrency && prev.paused === next.paused) continue;
      lastSettings.set(id, { ...next, seq: (prev?.seq ?? 0) + 1 });
      outbox.get(id)!.settingsDirty = true;
    }
    controlDirty = false;
  };

  const release = (released: Map<string, RangeSet>) => {
    for (const [id, ready] of released) outbox.get(id)!.ready.addAll(ready);
  };

  setHandler(nodeReportSignal, (report: NodeReport) => {
    const done = RangeSet.fromJSON(report.done);
    release(readiness.markDone(report.node, done));
    let nodeFailures = withoutPartitions(failures[report.node] ?? [], done);
    if (report.failures.length > 0) {
      for (const group of report.failures) readiness.markFailed(report.node, RangeSet.fromJSON(group.ranges));
      nodeFailures = mergeFailures(nodeFailures, report.failures);
    }
    failures = { ...failures, [report.node]: nodeFailures };
    reports[report.node] = report.state;
    if (report.final === 'cancelled') cancelledNodes.add(report.node);
    // Whether a node has work in hands decides its share of the limits.
    controlDirty = true;
  });

  const nodeIds = new Set(plan.nodes.map((n) => n.id));
  // Once settled, the backfill is ending: a retry then resumes it in a new run (the client does that).
  let closing = false;
  const checkRetry = (node?: string | null) => {
    checkNode(node);
    if (closing) throw new Error('the backfill is finishing; run retry-failed again once it has ended');
  };
  const checkNode = (node?: string | null) => {
    if (node !== undefined && node !== null && !nodeIds.has(node)) {
      throw new Error(`unknown node '${node}': this backfill's nodes are ${[...nodeIds].join(', ')}`);
    }
  };
  const checkRate = (rate: number | null, node?: string) => {
    checkNode(node);
    if (rate !== null && !(Number.isFinite(rate) && rate > 0)) {
      throw new Error(`rate must be a number of partitions per second above 0 (got ${String(rate)})`);
    }
  };
  const checkConcurrency = (concurrency: number | null, node?: string) => {
    checkNode(node);
    const max = node === undefined ? 10_000 : 1000;
    if (concurrency === null && node !== undefined) throw new Error('a node needs a concurrency (a whole number from 1 to 1000)');
    if (concurrency !== null && !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= max)) {
      throw new Error(`concurrency must be a whole number from 1 to ${max} (got ${String(concurrency)})`);
    }
  };

  const controlState = (): ControlState => ({
    paused,
    rate: limits.rate,
    concurrency: limits.concurrency,
    nodes: plan.nodes.map((n) => ({ id: n.id, ...nodeLimits(n) })),
  });
  const setPaused = (value: boolean) => {
    paused = value;
    controlDirty = true;
    return controlState();
  };
  const setRate = (rate: number | null, node?: string) => {
    if (node === undefined) limits.rate = rate;
    else overrides[node] = { ...overrides[node], rate };
    controlDirty = true;
    return controlState();
  };
  const setConcurrency = (concurrency: number | null, node?: string) => {
    if (node === undefined) limits.concurrency = concurrency;
    else overrides[node] = { ...overrides[node], concurrency: concurrency! };
    controlDirty = true;
    return controlState();
  };
  const retryFailed = (node?: string | null) => {
    const retried = readiness.retryFailed(node ?? undefined);
    let count = 0;
    for (const [id, ranges] of retried) {
      failures = { ...failures, [id]: [] };
      count += ranges.size;
    }
    release(retried);
    controlDirty = true;
    return count;
  };
  const ignoreInvalid = <A extends unknown[]>(check: (...args: A) => void, apply: (...args: A) => unknown) => (...args: A) => {
    try {
      check(...args);
    } catch (error) {
      log.warn(`signal ignored: ${(error as Error).message}`);
      return;
    }
    apply(...args);
  };

  setHandler(pauseSignal, () => void setPaused(true));
  setHandler(resumeSignal, () => void setPaused(false));
  setHandler(setRateSignal, ignoreInvalid(checkRate, setRate));
  setHandler(setConcurrencySignal, ignoreInvalid(checkConcurrency, setConcurrency));
  setHandler(retryFailedSignal, ignoreInvalid(checkRetry, retryFailed));
  setHandler(pauseUpdate, () => setPaused(true));
  setHandler(resumeUpdate, () => setPaused(false));
  setHandler(setRateUpdate, setRate, { validator: checkRate });
  setHandler(setConcurrencyUpdate, setConcurrency, { validator: checkConcurrency });
  setHandler(retryFailedUpdate, retryFailed, { validator: checkRetry });

  const progress = (state: BackfillResult['state'] | 'running') =>
    progressOf({ backfillId, name: plan.name, state, paused, limits, plan, readiness, reports, failures, lastSettings, runs });
  setHandler(progressQuery, () => progress('running'));
  setHandler(partitionsQuery, () =>
    Object.fromEntries(plan.nodes.map((n) => [n.id, { done: readiness.done(n.id).toJSON(), failed: readiness.failed(n.id).toJSON() }])),
  );

  const send = (id: string) => {
    const out = outbox.get(id)!;
    const control: NodeControl = {};
    if (!out.ready.isEmpty) control.ready = out.ready.toJSON();
    if (out.settingsDirty) control.settings = lastSettings.get(id)!;
    if (out.finish) control.finish = true;
    out.ready = new RangeSet();
    out.settingsDirty = false;
    const finishing = out.finish;
    out.finish = false;
    sending.add(id);
    CancellationScope.nonCancellable(() => getExternalWorkflowHandle(nodeWorkflowId(backfillId, id)).signal(nodeControlSignal, control))
      .then(
        () => {
          if (finishing) finishedNodes.add(id);
        },
        (error: unknown) => log.warn(`could not signal node workflow ${id}: ${String(error)}`),
      )
      .finally(() => sending.delete(id));
  };
  const hasOutgoing = (id: string) => {
    const out = outbox.get(id)!;
    return !out.ready.isEmpty || out.settingsDirty || out.finish;
  };
  const flushable = () => plan.nodes.some((n) => !sending.has(n.id) && hasOutgoing(n.id));
  const flush = () => plan.nodes.forEach((n) => !sending.has(n.id) && hasOutgoing(n.id) && send(n.id));

  const shouldContinueAsNew = () => {
    const current = workflowInfo();
    return current.continueAsNewSuggested || current.historyLength >= tuning.historyLimit;
  };

  const carryState = (): BackfillCarry => ({
    runKey,
    readiness: readiness.toJSON(),
    childrenRunning: true,
    paused,
    limits,
    overrides,
    reports,
    failures,
    outbox: Object.fromEntries(plan.nodes.map((n) => {
      const out = outbox.get(n.id)!;
      return [n.id, { ready: out.ready.toJSON(), settingsDirty: out.settingsDirty }];
    })),
    settings: Object.fromEntries(lastSettings),
    startedAt,
    runs,
  });

  try {
    if (!carry?.childrenRunning) {
      // Partitions that --only-changed keeps count as done before anything is released.
      const initial = initialRelease(plan, readiness, input.skip);
      refreshSettings();
      await Promise.all(
        plan.nodes.map((node) =>
          startChild(nodeWorkflow, {
            workflowId: nodeWorkflowId(backfillId, node.id),
            args: [
              {
                backfillId,
                parentWorkflowId: info.workflowId,
                runKey,
                spec: input.spec,
                range: input.range,
                nodeId: node.id,
                settings: lastSettings.get(node.id)!,
                ready: initial.get(node.id)?.toJSON() ?? [],
                tuning,
              },
            ],
            // The node workflows outlive each run of this one (continue-as-new); this
            // workflow ends or cancels them itself.
            parentClosePolicy: ParentClosePolicy.ABANDON,
            cancellationType: ChildWorkflowCancellationType.ABANDON,
            typedSearchAttributes: [
              { key: BACKFILL_ID, value: backfillId },
              { key: BACKFILL_NODE, value: node.id },
            ],
          }),
        ),
      );
      for (const node of plan.nodes) outbox.get(node.id)!.settingsDirty = false;
    }

    for (;;) {
      await condition(
        () => controlDirty || flushable() || (sending.size === 0 && (readiness.settled || shouldContinueAsNew())),
      );
      if (controlDirty) refreshSettings();
      flush();
      if (sending.size > 0 || flushable()) continue;
      if (readiness.settled) break;
      if (shouldContinueAsNew()) {
        await condition(allHandlersFinished);
        return await continueAsNew<typeof backfillWorkflow>({ ...input, carry: carryState() });
      }
    }

    // Settled: every partition is done, failed or blocked. Let the node workflows end.
    closing = true;
    for (const node of plan.nodes) outbox.get(node.id)!.finish = true;
    flush();
    await condition(() => sending.size === 0 && !flushable());
    const failed = plan.nodes.some((n) => !readiness.failed(n.id).isEmpty);
    const state = failed ? 'completed_with_failures' : 'completed';
    return { state, progress: progress(state), carry: { ...carryState(), childrenRunning: false } };
  } catch (error) {
    if (!isCancellation(error)) throw error;
    await CancellationScope.nonCancellable(async () => {
      const live = plan.nodes.filter((n) => !finishedNodes.has(n.id));
      await Promise.all(
        live.map((n) =>
          getExternalWorkflowHandle(nodeWorkflowId(backfillId, n.id))
            .cancel()
            .catch(() => cancelledNodes.add(n.id)),
        ),
      );
      const wound = await condition(() => live.every((n) => cancelledNodes.has(n.id)), CANCEL_GRACE);
      if (!wound) log.warn('node workflows did not confirm cancellation in time');
    });
    throw error;
  }
}

function minRate(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
