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
  patched,
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
import { BackfillError } from '../core/errors.ts';
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
  refusal,
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
import { BackfillSession } from './backfill-session.ts';
import { nodeWorkflow } from './node.ts';

/**
 * Patch (docs/workflow-versions.md): once the backfill finishes, a node workflow found gone with
 * nothing in hands is finished (its `finish` is not put back), and whatever reaches the outbox
 * while the nodes are told to finish is sent too.
 */
export const END_AFTER_FINISH = 'end-after-finish';
/** Patch (docs/workflow-versions.md): at the history limit, sending stops and the outbox is carried. */
export const BOUNDED_CONTINUE_AS_NEW = 'bounded-continue-as-new';

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
  const starting = !carry?.childrenRunning;
  const session = new BackfillSession(
    {
      backfillId,
      runKey,
      startedAt,
      range: input.range,
      taskQueue: plan.nodes[0]!.spec.taskQueue,
      nodes: () => plan.nodes.map((n) => coordinator.nodeSpec(n.id)),
      name: input.spec.name,
      ...(input.spec.description !== undefined ? { description: input.spec.description } : {}),
    },
    carry,
    starting,
  );
  /** The carried state of this run: the coordinator's, and what the session keeps. */
  const carryOf = (childrenRunning: boolean) => ({ ...coordinator.toCarry(), ...session.toCarry(), runKey, childrenRunning, startedAt, runs });

  const sending = new Set<string>();
  /** Node workflows a signal could not reach: closed, to be started again. */
  const unreachable = new Set<string>();
  const finishedNodes = new Set<string>();
  const cancelledNodes = new Set<string>();
  const heardFrom = new Map<string, number>();

  setHandler(nodeReportSignal, (report: NodeReport) => {
    try {
      coordinator.onReport(report);
    } catch (error) {
      // Not a report of this backfill (sent by hand?): it would have stopped the workflow.
      if (!(error instanceof BackfillError)) throw error;
      log.warn(`signal nodeReport ignored: ${error.message}`);
      return;
    }
    heardFrom.set(report.node, workflowTime());
    if (report.final === 'cancelled') cancelledNodes.add(report.node);
  });

  // Every control argument is parsed where it arrives, by the coordinator method that applies
  // it: an update's validator parses (and refuses with the BackfillError's code as the failure
  // type), its handler parses again and applies the parsed value, and a signal with an invalid
  // payload is ignored and logged.
  const refusing =
    <A extends unknown[], R>(run: (...args: A) => R) =>
    (...args: A): R => {
      try {
        return run(...args);
      } catch (error) {
        throw refusal(error);
      }
    };
  const ignoringInvalid =
    <A extends unknown[]>(name: string, run: (...args: A) => unknown) =>
    (...args: A): void => {
      try {
        run(...args);
      } catch (error) {
        if (!(error instanceof BackfillError)) throw error;
        log.warn(`signal ${name} ignored: ${error.message}`);
      }
    };
  const setRate = (rate: unknown, node?: unknown) => coordinator.setRate(rate, node);
  const setConcurrency = (concurrency: unknown, node?: unknown) => coordinator.setConcurrency(concurrency, node);
  const retryFailed = (node?: unknown) => coordinator.retryFailed(node);
  setHandler(pauseSignal, () => void coordinator.setPaused(true));
  setHandler(resumeSignal, () => void coordinator.setPaused(false));
  setHandler(setRateSignal, ignoringInvalid('setRate', setRate));
  setHandler(setConcurrencySignal, ignoringInvalid('setConcurrency', setConcurrency));
  setHandler(retryFailedSignal, ignoringInvalid('retryFailed', retryFailed));
  setHandler(pauseUpdate, () => coordinator.setPaused(true));
  setHandler(resumeUpdate, () => coordinator.setPaused(false));
  setHandler(setRateUpdate, refusing(setRate), { validator: refusing((rate: unknown, node?: unknown) => void coordinator.parseRate(rate, node)) });
  setHandler(setConcurrencyUpdate, refusing(setConcurrency), {
    validator: refusing((concurrency: unknown, node?: unknown) => void coordinator.parseConcurrency(concurrency, node)),
  });
  setHandler(retryFailedUpdate, refusing(retryFailed), { validator: refusing((node?: unknown) => void coordinator.parseRetry(node)) });
  // Fix and go on: a new spec with the same nodes and partitions, for the partitions still to run.
  let spec = input.spec;
  setHandler(
    replaceSpecUpdate,
    refusing((next: unknown) => {
      const replaced = coordinator.replaceSpec(next, spec);
      spec = replaced.spec;
      return replaced.changed;
    }),
    { validator: refusing((next: unknown) => void coordinator.parseSpec(next, spec)) },
  );
  setHandler(progressQuery, () => coordinator.progress(backfillId, 'running', runs));
  setHandler(carryQuery, () => carryOf(false));
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
          ...(session.warehouseId !== undefined ? { warehouseId: session.warehouseId } : {}),
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

  /** Set once the backfill finishes, behind the patch END_AFTER_FINISH. */
  let endAfterFinish = false;
  /** The run is handing over to the next (continue-as-new): nothing more is sent, the outbox is carried. */
  let handingOver = false;
  const deliver = (id: string, control: NodeControl) => {
    sending.add(id);
    CancellationScope.nonCancellable(() => getExternalWorkflowHandle(nodeWorkflowId(backfillId, id)).signal(nodeControlSignal, control))
      .then(
        () => {
          if (control.finish) finishedNodes.add(id);
        },
        (error: unknown) => {
          // Nothing is dropped: it goes back to the outbox, and the node is started again; a
          // node with nothing left to do at the end is gone (its finish is not kept to send).
          if (endAfterFinish) {
            if (coordinator.undeliverable(id, control) === 'gone') finishedNodes.add(id);
            else unreachable.add(id);
          } else {
            coordinator.restore(id, control);
            if (!coordinator.isClosing || coordinator.hasInHands(id)) unreachable.add(id);
            else finishedNodes.add(id);
          }
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
        if (!handingOver && coordinator.hasInHands(node.id) && silentFor >= tuning.probeIntervalMs && !sending.has(node.id) && !unreachable.has(node.id)) {
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

  // Nodes whose partitions have all settled end their lineage run; looked at every two seconds at most.
  let settledAt = -Infinity;
  const endSettledNodes = () => {
    const now = workflowTime();
    if (now - settledAt < 2000) return;
    settledAt = now;
    session.nodesSettled(() => coordinator.progress(backfillId, 'running', runs).nodes);
  };

  try {
    showStatus(coordinator.isPaused ? 'paused' : 'running');
    if (starting) {
      // The warehouse the workers write to, and a lease on every dataset, before anything is written.
      if (session.leasing) await session.begin();
      // Partitions that --only-changed keeps count as done before anything is released.
      coordinator.releaseInitial(input.skip);
      coordinator.refreshSettings();
      // A resumed run: what the ended run had in hands may be published already (recheck).
      await Promise.all(plan.nodes.map((node) => startNode(node, coordinator.takeInitial(node.id), coordinator.recheckOf(node.id))));
      session.started();
    }
    void prober().catch((error: unknown) => {
      if (!isCancellation(error)) log.error(`node checks failed: ${String(error)}`);
    });

    for (;;) {
      await condition(
        () =>
          coordinator.needsRefresh ||
          (!handingOver && (flushable() || unreachable.size > 0)) ||
          (sending.size === 0 && (coordinator.settled || shouldContinueAsNew())),
      );
      coordinator.refreshSettings();
      showStatus(coordinator.isPaused ? 'paused' : 'running');
      show();
      endSettledNodes();
      // With reports streaming in there may never be a moment with nothing to send: once the
      // history is long enough, nothing more is sent, the signals in flight land, and the
      // outbox is carried. The run then ends within a bounded number of events of the limit.
      if (!handingOver && !coordinator.settled && shouldContinueAsNew() && patched(BOUNDED_CONTINUE_AS_NEW)) handingOver = true;
      if (!handingOver) {
        await restartUnreachable();
        flush();
      }
      if (sending.size > 0 || (!handingOver && (flushable() || unreachable.size > 0))) continue;
      if (coordinator.settled) break;
      if (shouldContinueAsNew()) {
        await session.landed();
        await condition(allHandlersFinished);
        return await continueAsNew<typeof backfillWorkflow>({
          ...input,
          spec,
          carry: carryOf(true),
        });
      }
    }

    // Settled: every partition is done, failed or blocked. Let the node workflows end.
    coordinator.finishAll();
    endAfterFinish = patched(END_AFTER_FINISH);
    flush();
    if (endAfterFinish) {
      // Whatever is put back in the outbox while the nodes are told to finish is sent too.
      for (;;) {
        await condition(() => sending.size === 0 || flushable());
        if (sending.size === 0 && !flushable()) break;
        flush();
      }
    } else {
      await condition(() => sending.size === 0 && !flushable());
    }
    const state = coordinator.anyFailed ? 'completed_with_failures' : 'completed';
    const progress = coordinator.progress(backfillId, state, runs);
    session.ended(state, progress.nodes);
    await session.release();
    await session.landed();
    showStatus(state);
    show(state);
    return { state, progress, carry: carryOf(false) };
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
      session.ended(cancelled ? 'cancelled' : 'failed', coordinator.progress(backfillId, cancelled ? 'cancelled' : 'failed', runs).nodes, cancelled ? undefined : (error as ApplicationFailure).message);
      await session.release().catch((failure: unknown) => log.warn(`the datasets' leases were not released: ${String(failure)}`));
      await session.landed();
    });
    throw error;
  }
}
