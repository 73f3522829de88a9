/**
 * `backfillWorkflow`: the parent of a backfill (id `backfill/<backfillId>`), a thin loop
 * around `BackfillCoordinator` (core/coordinator.ts).
 *
 * It starts one `nodeWorkflow` per node and coordinates readiness at the partition level:
 * node workflows report what completed (batched signals); the coordinator releases each
 * downstream partition once every upstream partition it needs is done, and this loop
 * delivers it in a batched signal. Whatever cannot be delivered goes back to the outbox; a
 * node workflow that closed without finishing (terminated, failed) is started again with
 * everything it held. It owns the control surface and continues as new before its history
 * grows large; the node workflows live on across that.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { BackfillCoordinator } from '../core/coordinator.ts';
import { HARD_BREAK, backfillCurrentDetails, backfillSummary, nodeDetails, nodeSummary } from '../core/details.ts';
import { expandPlan, upstreamPartitions, type PlanNode } from '../core/plan.ts';
import { changedNodes } from '../core/spec-changes.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import { CORE_GENERATION, DEFAULT_TUNING, type BackfillInput, type BackfillResult, type NodeControl, type NodeReport } from '../core/protocol.ts';
import type { RangeSet } from '../core/ranges.ts';
import { workflowTime } from './clock.ts';
import {
  BACKFILL_ID,
  BACKFILL_NODE,
  BACKFILL_STATUS,
  assertCoreGeneration,
  carryQuery,
  nodeControlSignal,
  nodeReportSignal,
  nodeWorkflowId,
  partitionsQuery,
  pauseSignal,
  pauseUpdate,
  progressQuery,
  replaceSpecUpdate,
  resumeSignal,
  resumeUpdate,
  retryFailedSignal,
  retryFailedUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
  setRateSignal,
  setRateUpdate,
} from './definitions.ts';
import { nodeWorkflow } from './node.ts';

/** How long a cancelled backfill waits for its node workflows to wind down. */
const CANCEL_GRACE = '10 minutes';

export async function backfillWorkflow(input: BackfillInput): Promise<BackfillResult> {
  assertCoreGeneration(input.core);
  const tuning = { ...DEFAULT_TUNING, ...input.tuning };
  const plan = expandPlan(input.spec, input.range);
  const info = workflowInfo();
  const carry = input.carry;
  const backfillId = input.backfillId;
  const runKey = carry?.runKey ?? info.firstExecutionRunId;
  const runs = (carry?.runs ?? 0) + 1;
  const startedAt = carry?.startedAt ?? workflowTime();
  const coordinator = new BackfillCoordinator(
    plan,
    {
      rate: input.limits?.rate !== undefined ? input.limits.rate : input.spec.rate,
      concurrency: input.limits?.concurrency !== undefined ? input.limits.concurrency : input.spec.concurrency,
    },
    carry,
  );

  const sending = new Set<string>();
  /** Node workflows a signal could not reach: closed, to be started again. */
  const unreachable = new Set<string>();
  const finishedNodes = new Set<string>();
  const cancelledNodes = new Set<string>();
  const heardFrom = new Map<string, number>();

  setHandler(nodeReportSignal, (report: NodeReport) => {
    coordinator.onReport(report);
    heardFrom.set(report.node, workflowTime());
    if (report.final === 'cancelled') cancelledNodes.add(report.node);
  });

  const ignoreInvalid =
    <A extends unknown[]>(check: (...args: A) => unknown, apply: (...args: A) => unknown) =>
    (...args: A) => {
      try {
        check(...args);
      } catch (error) {
        log.warn(`signal ignored: ${(error as Error).message}`);
        return;
      }
      apply(...args);
    };
  const setRate = (rate: number | null, node?: string) => coordinator.setRate(rate, node);
  const setConcurrency = (concurrency: number | null, node?: string) => coordinator.setConcurrency(concurrency, node);
  const retryFailed = (node?: string | null) => coordinator.retryFailed(node);
  const checkRate = (rate: number | null, node?: string) => void coordinator.validateRate(rate, node);
  const checkConcurrency = (concurrency: number | null, node?: string) => void coordinator.validateConcurrency(concurrency, node);
  const checkRetry = (node?: string | null) => coordinator.validateRetry(node);
  setHandler(pauseSignal, () => void coordinator.setPaused(true));
  setHandler(resumeSignal, () => void coordinator.setPaused(false));
  setHandler(setRateSignal, ignoreInvalid(checkRate, setRate));
  setHandler(setConcurrencySignal, ignoreInvalid(checkConcurrency, setConcurrency));
  setHandler(retryFailedSignal, ignoreInvalid(checkRetry, retryFailed));
  setHandler(pauseUpdate, () => coordinator.setPaused(true));
  setHandler(resumeUpdate, () => coordinator.setPaused(false));
  setHandler(setRateUpdate, setRate, { validator: checkRate });
  setHandler(setConcurrencyUpdate, setConcurrency, { validator: checkConcurrency });
  setHandler(retryFailedUpdate, retryFailed, { validator: checkRetry });
  // Fix and go on: a new spec with the same nodes and partitions, for the partitions still to run.
  let spec = input.spec;
  setHandler(
    replaceSpecUpdate,
    (next: ResolvedSpec) => {
      const changed = changedNodes(spec, next);
      spec = next;
      for (const id of changed) coordinator.replaceNodeSpec(next.nodes.find((n) => n.id === id)!);
      return changed;
    },
    { validator: (next: ResolvedSpec) => void changedNodes(spec, next) },
  );
  setHandler(progressQuery, () => coordinator.progress(backfillId, 'running', runs));
  setHandler(carryQuery, () => ({ ...coordinator.toCarry(), runKey, childrenRunning: false, startedAt, runs }));
  setHandler(partitionsQuery, () =>
    Object.fromEntries(plan.nodes.map((n) => [n.id, { done: coordinator.readiness.done(n.id).toJSON(), failed: coordinator.readiness.failed(n.id).toJSON() }])),
  );

  let status = '';
  const showStatus = (next: string) => {
    if (next === status) return;
    status = next;
    upsertSearchAttributes([{ key: BACKFILL_STATUS, value: next }]);
  };

  // Started whatever happens: a cancellation that arrives while a start is pending would leave
  // the start unresolved (the child is abandoned, not cancelled); the cleanup below cancels it.
  const startNode = (node: PlanNode, ready: RangeSet, recheck?: RangeSet) =>
    CancellationScope.nonCancellable(() => startChild(nodeWorkflow, {
      workflowId: nodeWorkflowId(backfillId, node.id),
      args: [
        {
          core: CORE_GENERATION,
          backfillId,
          parentWorkflowId: info.workflowId,
          runKey,
          node: coordinator.nodeSpec(node.id),
          upstream: upstreamPartitions(input.spec, node.id),
          range: input.range,
          settings: coordinator.settingsOf(node.id),
          ready: ready.toJSON(),
          ...(recheck && !recheck.isEmpty ? { recheck: recheck.toJSON() } : {}),
          tuning,
        },
      ],
      // The node workflows outlive each run of this one (continue-as-new); this workflow
      // ends, cancels or restarts them itself.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      staticSummary: nodeSummary(backfillId, node.spec, node.partitions),
      staticDetails: nodeDetails(node.spec, node.partitions),
      typedSearchAttributes: [
        { key: BACKFILL_ID, value: backfillId },
        { key: BACKFILL_NODE, value: node.id },
      ],
    }));

  const deliver = (id: string, control: NodeControl) => {
    sending.add(id);
    CancellationScope.nonCancellable(() => getExternalWorkflowHandle(nodeWorkflowId(backfillId, id)).signal(nodeControlSignal, control))
      .then(
        () => {
          if (control.finish) finishedNodes.add(id);
        },
        (error: unknown) => {
          // Nothing is dropped: it goes back to the outbox, and the node is started again.
          coordinator.restore(id, control);
          if (!coordinator.isClosing || coordinator.hasInHands(id)) unreachable.add(id);
          else finishedNodes.add(id);
          log.warn(`node workflow ${id} cannot be reached: ${String(error)}`);
        },
      )
      .finally(() => sending.delete(id));
  };
  const flushable = () => plan.nodes.some((n) => !sending.has(n.id) && !unreachable.has(n.id) && coordinator.hasOutgoing(n.id));
  const flush = () => {
    for (const n of plan.nodes) {
      if (!sending.has(n.id) && !unreachable.has(n.id) && coordinator.hasOutgoing(n.id)) deliver(n.id, coordinator.takeOutgoing(n.id));
    }
  };

  /** Starts again the node workflows that closed without finishing, or fails the backfill. */
  const restartUnreachable = async () => {
    for (const id of [...unreachable]) {
      const restart = coordinator.restartNode(id, tuning.maxNodeRestarts);
      if (!restart) {
        throw ApplicationFailure.nonRetryable(
          `node workflow ${nodeWorkflowId(backfillId, id)} closed without finishing ${tuning.maxNodeRestarts + 1} times: ` +
            `see why in its history, fix it, then run 'backfill resume ${backfillId}'`,
          'NodeWorkflowLost',
        );
      }
      log.warn(`node workflow ${id} closed without finishing; starting it again (${restart.attempt} of ${tuning.maxNodeRestarts})`);
      await startNode(plan.byId.get(id)!, restart.ready, restart.ready);
      unreachable.delete(id);
    }
  };

  /** A node silent for a while with work in hands may be gone: an empty signal finds out. */
  const prober = async () => {
    for (;;) {
      await sleep(tuning.probeIntervalMs, { summary: 'check node workflows' });
      const now = workflowTime();
      for (const node of plan.nodes) {
        const silentFor = now - (heardFrom.get(node.id) ?? startedAt);
        if (coordinator.hasInHands(node.id) && silentFor >= tuning.probeIntervalMs && !sending.has(node.id) && !unreachable.has(node.id)) {
          deliver(node.id, {});
        }
      }
    }
  };

  // The Web UI's current details: progress per dataset, refreshed at most every two seconds.
  let shownAt = -Infinity;
  const show = (state: BackfillResult['state'] | 'running' = 'running') => {
    const now = workflowTime();
    if (state === 'running' && now - shownAt < 2000) return;
    shownAt = now;
    setCurrentDetails(`**${backfillSummary(plan)}** · id ${backfillId}${HARD_BREAK}${backfillCurrentDetails(coordinator.progress(backfillId, state, runs))}`);
  };

  const shouldContinueAsNew = () => {
    const current = workflowInfo();
    return current.continueAsNewSuggested || current.historyLength >= tuning.historyLimit;
  };

  try {
    showStatus(coordinator.isPaused ? 'paused' : 'running');
    if (!carry?.childrenRunning) {
      // Partitions that --only-changed keeps count as done before anything is released.
      coordinator.releaseInitial(input.skip);
      coordinator.refreshSettings();
      await Promise.all(plan.nodes.map((node) => startNode(node, coordinator.takeInitial(node.id))));
    }
    void prober().catch((error: unknown) => {
      if (!isCancellation(error)) log.error(`node checks failed: ${String(error)}`);
    });

    for (;;) {
      await condition(
        () =>
          coordinator.needsRefresh || flushable() || unreachable.size > 0 || (sending.size === 0 && (coordinator.settled || shouldContinueAsNew())),
      );
      coordinator.refreshSettings();
      showStatus(coordinator.isPaused ? 'paused' : 'running');
      show();
      await restartUnreachable();
      flush();
      if (sending.size > 0 || flushable() || unreachable.size > 0) continue;
      if (coordinator.settled) break;
      if (shouldContinueAsNew()) {
        await condition(allHandlersFinished);
        return await continueAsNew<typeof backfillWorkflow>({
          ...input,
          spec,
          carry: { ...coordinator.toCarry(), runKey, childrenRunning: true, startedAt, runs },
        });
      }
    }

    // Settled: every partition is done, failed or blocked. Let the node workflows end.
    coordinator.finishAll();
    flush();
    await condition(() => sending.size === 0 && !flushable());
    const state = coordinator.anyFailed ? 'completed_with_failures' : 'completed';
    showStatus(state);
    show(state);
    return {
      state,
      progress: coordinator.progress(backfillId, state, runs),
      carry: { ...coordinator.toCarry(), runKey, childrenRunning: false, startedAt, runs },
    };
  } catch (error) {
    const cancelled = isCancellation(error);
    if (!cancelled && !(error instanceof ApplicationFailure)) throw error;
    // Cancelled, or failed for good: the node workflows stop too.
    await CancellationScope.nonCancellable(async () => {
      showStatus(cancelled ? 'cancelled' : 'failed');
      const live = plan.nodes.filter((n) => !finishedNodes.has(n.id) && !unreachable.has(n.id));
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
