/** `backfill set-budget <id> --retries N | --cost X`: raise (or lower) a running backfill's budget. */
import { Command } from '@commander-js/extra-typings';
import type { Unchanged } from '../../core/audit.ts';
import type { ControlState } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, positiveInteger, positiveNumber, print, reasonOption } from '../options.ts';
import { limitNow, unchangedTogether } from '../unchanged.ts';
import { withClient } from '../with-client.ts';
import { heldLine } from './resume.ts';

export type BudgetChange = { budget: 'retries' | 'cost'; limit: number };

/**
 * Applies each change in turn (one update each), and returns every reply, in order. The client judged
 * them all first (`judgeChanges`); should one still be refused after another applied (a backfill
 * whose code predates that judgement, or a policy that changed meanwhile), the error says what
 * already applied, since it stays applied.
 */
export async function applyBudgets<T>(changes: readonly BudgetChange[], apply: (change: BudgetChange) => Promise<T>): Promise<T[]> {
  const applied: string[] = [];
  const replies: T[] = [];
  for (const change of changes) {
    try {
      replies.push(await apply(change));
    } catch (error) {
      if (applied.length === 0) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const code = error instanceof BackfillError ? error.code : 'failed';
      const path = error instanceof BackfillError ? error.path : undefined;
      throw new BackfillError(code, `${applied.join(', ')} (applied, and stays so); ${change.budget} refused: ${message}`, path);
    }
    applied.push(`${change.budget} budget set to ${change.limit.toLocaleString('en-US')}`);
  }
  if (replies.length === 0) throw new BackfillError('invalid_argument', 'give --retries <attempts> or --cost <amount> (or both)', 'budget');
  return replies;
}

/**
 * What set-budget says of its replies (one per change, in order): each budget `is now` or `was
 * already` its cap; --json has the last reply's state, each budget's `{ limit, unchanged? }`, and
 * `unchanged` only when no budget changed (with both, as of the newer of their settings).
 */
export function budgetsOutcome(id: string, changes: readonly BudgetChange[], replies: readonly ControlState[]): { json: Record<string, unknown>; text: string } {
  const { unchanged: _last, ...state } = replies[replies.length - 1]!;
  const budgets: Partial<Record<BudgetChange['budget'], { limit: number; unchanged?: Unchanged }>> = {};
  const unchanged: Unchanged[] = [];
  changes.forEach((change, i) => {
    const same = replies[i]?.unchanged;
    budgets[change.budget] = { limit: change.limit, ...(same ? { unchanged: same } : {}) };
    if (same) unchanged.push(same);
  });
  const nothingChanged = unchanged.length === changes.length;
  return {
    json: { backfillId: id, ...state, budgets, ...(nothingChanged ? { unchanged: unchangedTogether(unchanged) } : {}) },
    text: `${id}: ${changes.map((c) => `${c.budget} budget ${limitNow(c.limit.toLocaleString('en-US'), budgets[c.budget]?.unchanged)}`).join(', ')}${heldLine(state, id)}`,
  };
}

export function setBudgetCommand() {
  return documented(new Command('set-budget'), HELP_GROUPS.control, [
    ['backfill set-budget restate-2024 --retries 500 --reason upstream-API-flaky-INC-77', 'up to 500 failed attempts in all; a backfill the retry budget paused goes on'],
    ['backfill set-budget restate-2024 --cost 2e12 --reason finance-approved-2TB-FIN-1234', 'a new cost cap, in the policy\'s cost metric; what was spent stays counted'],
  ])
    .description("change a running backfill's retry or cost budget (within the policy's most); what was spent stays counted, and a backfill a budget paused goes on")
    .argument('<id>', 'backfill id')
    .option('--retries <attempts>', 'failed partition attempts allowed in all', positiveInteger('--retries'))
    .option('--cost <amount>', "cost allowed in all, in the policy's cost metric", positiveNumber('--cost'))
    .addOption(reasonOption())
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const changes: BudgetChange[] = [
        ...(options.retries !== undefined ? [{ budget: 'retries' as const, limit: options.retries }] : []),
        ...(options.cost !== undefined ? [{ budget: 'cost' as const, limit: options.cost }] : []),
      ];
      if (changes.length === 0) throw new BackfillError('invalid_argument', 'give --retries <attempts> or --cost <amount> (or both)', 'budget');
      await withClient(command, async (client) => {
        // Judged together first, so that a refused one applies none of them.
        await client.judgeChanges(id, changes.map((c) => ({ action: 'set-budget' as const, ...c })), options);
        const replies = await applyBudgets(changes, (change) => client.setBudget(id, change.budget, change.limit, options));
        const outcome = budgetsOutcome(id, changes, replies);
        print(options.json, outcome.json, () => outcome.text);
      });
    });
}
