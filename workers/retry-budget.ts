/**
 * A backfill's retry budget, for the batches about to run on this worker. The workflow counts a
 * batch's failed attempts only when the batch ends, so Temporal used to retry a failing batch to
 * its last attempt before any of its failures counted: a new user's budget of 3 stopped at 15.
 * Now a batch's retry asks the backfill's workflow what it counted (its `progress` query, through
 * the worker's connection) and adds the failed attempts of the batches retrying on this worker,
 * which it has not counted yet: when they reach the budget, the batch runs nothing and gives its
 * partitions back (activities/run-partitions.ts). They wait, not failed, and the attempts that
 * failed are counted with its result, so the workflow's hold follows at once.
 *
 * An answer is kept a moment per backfill (a wave of retries asks once); while one says the budget
 * is spent, a first attempt is held too (it asks nothing itself: a query for every batch would
 * cost every backfill). An answer that does not come within a few seconds (no workflow worker), a
 * backfill without a retry budget, or any failure, holds nothing: the batch runs, as before.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import { QUERY_NAMES, backfillWorkflowId } from '../core/workflow-ids.ts';
import { queryWithin } from './query-within.ts';

/** The failed attempts the workflow counted, and the cap. */
export type RetryBudget = { used: number; limit: number };

type Progressish = { governance?: { budgets?: { retries?: { used?: unknown; limit?: unknown } | null } } };

/** The retry budget of a backfill as its workflow counts it; null: none, or no answer in `timeoutMs`. */
export function queryRetryBudget(connection: Pick<NativeConnection, 'workflowService' | 'withDeadline'>, namespace: string, timeoutMs = 2000): (backfillId: string) => Promise<RetryBudget | null> {
  return async (backfillId) => {
    try {
      const answer = await queryWithin(connection, { namespace, execution: { workflowId: backfillWorkflowId(backfillId) }, query: { queryType: QUERY_NAMES.progress } }, timeoutMs);
      const payload = answer.queryResult?.payloads?.[0];
      if (!payload) return null;
      const retries = defaultPayloadConverter.fromPayload<Progressish>(payload)?.governance?.budgets?.retries;
      return typeof retries?.used === 'number' && typeof retries.limit === 'number' ? { used: retries.used, limit: retries.limit } : null;
    } catch {
      return null;
    }
  };
}

export type RetryBudgetOptions = {
  /** How long an answer is kept (default 250 ms). */
  keepMs?: number;
  /** How long a batch's failed attempts count after its last attempt began here (default a minute: it may have gone on elsewhere). */
  forgetMs?: number;
  /** After a batch is held, how long every batch of its backfill is held here without asking (default 2 s): the workflow's hold is on its way. */
  heldMs?: number;
  now?: () => number;
};

export class RetryBudgetGate {
  private readonly answers = new Map<string, { at: number; budget: Promise<RetryBudget | null> }>();
  /** By backfill, by batch: the failed attempts of the batches retrying here, not counted by the workflow yet. */
  private readonly uncounted = new Map<string, Map<string, { failed: number; at: number }>>();
  /** By backfill: until when every batch is held here (one was held, for the budget was spent). */
  private readonly heldUntil = new Map<string, number>();
  private readonly keepMs: number;
  private readonly forgetMs: number;
  private readonly heldMs: number;
  private readonly now: () => number;

  constructor(
    private readonly read: (backfillId: string) => Promise<RetryBudget | null>,
    options: RetryBudgetOptions = {},
  ) {
    this.keepMs = options.keepMs ?? 250;
    this.forgetMs = options.forgetMs ?? 60_000;
    this.heldMs = options.heldMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Whether attempt `attempt` of `batch` (a workflow's activity) should run nothing: the failed
   * attempts the workflow counted, with those of the batches retrying here, reach the budget.
   * A batch held is forgotten here: its failed attempts go to the workflow with its result. Once
   * one is, every batch of the backfill is held here for a moment, a first attempt too: the
   * failed attempts of the others would reach the workflow too late, and what it gave back
   * would run again before the workflow's hold reached its node.
   */
  async holds(backfillId: string, batch: string, attempt: number): Promise<boolean> {
    const now = this.now();
    const uncounted = this.uncountedOf(backfillId, now);
    if ((this.heldUntil.get(backfillId) ?? 0) > now) {
      uncounted.delete(batch);
      return true;
    }
    if (attempt > 1) uncounted.set(batch, { failed: attempt - 1, at: now });
    const kept = this.answers.get(backfillId);
    const fresh = kept !== undefined && now - kept.at < this.keepMs;
    if (attempt === 1 && !fresh) return false;
    const budget = await (fresh ? kept.budget : this.ask(backfillId, now));
    if (budget === null) return false;
    const pending = [...uncounted.values()].reduce((sum, b) => sum + b.failed, 0);
    const held = budget.used + pending >= budget.limit;
    if (held) {
      uncounted.delete(batch);
      this.heldUntil.set(backfillId, now + this.heldMs);
    }
    return held;
  }

  private ask(backfillId: string, now: number): Promise<RetryBudget | null> {
    // Old answers go: one per backfill asked about in the last moment, at most.
    for (const [id, answer] of this.answers) if (now - answer.at >= this.keepMs) this.answers.delete(id);
    const budget = this.read(backfillId);
    this.answers.set(backfillId, { at: now, budget });
    return budget;
  }

  private uncountedOf(backfillId: string, now: number): Map<string, { failed: number; at: number }> {
    for (const [id, until] of this.heldUntil) if (until <= now) this.heldUntil.delete(id);
    for (const [id, batches] of this.uncounted) {
      for (const [batch, entry] of batches) if (now - entry.at >= this.forgetMs) batches.delete(batch);
      if (batches.size === 0 && id !== backfillId) this.uncounted.delete(id);
    }
    let batches = this.uncounted.get(backfillId);
    if (!batches) this.uncounted.set(backfillId, (batches = new Map()));
    return batches;
  }
}
