/** Human output of the command line: plan, status and lineage tables, live progress bars. */
import Table from 'cli-table3';
import pc from 'picocolors';
import { describeActor, describeChange } from '../core/audit.ts';
import type { BudgetStatus } from '../core/budget.ts';
import { formatDuration } from '../core/duration.ts';
import { formatPercent, rowChangePercent } from '../core/diff.ts';
import { describeMapping } from '../core/mapping.ts';
import type { PlanSummary } from '../core/plan.ts';
import { RECOMPUTE_REASONS } from '../core/only-changed.ts';
import { isHeld } from '../core/progress.ts';
import type { ChangeSummary } from './only-changed.ts';
import { isActive, type NodeProgress, type Progress } from '../core/protocol.ts';
import type { StatusRollback, UndoneBy } from '../core/rollback.ts';
import { retryFailedHint } from '../core/retry-hint.ts';
import { mixedDatasets } from '../core/kept-output.ts';
import { shellWord } from '../core/shell-word.ts';
import { windowsText } from '../core/windows-text.ts';
import type { InputVersions, LedgerRow } from '../activities/warehouse/types.ts';
import type { TaskFailingWarning } from './task-failing.ts';
import type { Waiting } from './waiting.ts';
import { endedText, undecided } from './ended.ts';
import { printable, printableText, type Printable } from './printable.ts';
import { number, plural } from './counts.ts';
import { activityFailingText, type ActivityFailing } from './activity-failing.ts';
import { utcTime } from './utc-time.ts';
import { rolledBackText } from './rolled-back-versions.ts';

/** Table colours only on a terminal. */
const tableStyle = () => (process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] });
const rate = (r: number | null) => (r === null ? 'unlimited' : `${Number(r.toFixed(2))}/s`);
/** `left`: partitions still to run; an estimate of 0 with some left is under a second, not done. */
const eta = (seconds: number | null, left: number) => (seconds === null ? '–' : seconds === 0 ? (left > 0 ? '<1s' : 'done') : formatDuration(seconds * 1000));
const leftOf = (n: Pick<NodeProgress, 'running' | 'queued' | 'pending'>) => n.running + (n.queued ?? 0) + n.pending;
/** `12`, or with partitions whose activity no worker has started: `12 (40 queued)`. */
const runningCell = (n: Pick<NodeProgress, 'running' | 'queued'>) => (n.queued ? `${number(n.running)} (${number(n.queued)} queued)` : number(n.running));
const STOPPED_SHORT = new Set<Progress['state']>(['cancelled', 'failed', 'discarded', 'canary_failed', 'terminated', 'timed_out']);
const throughput = (t: number | null) => (t === null ? '–' : `${t.toFixed(1)}/s`);
/**
 * Paused or held, nothing starts: the pace achieved before would read as the pace of now, so
 * none shows (as no ETA does). A backfill that ended keeps its figure, a pause left over too.
 */
const heldNow = (p: Pick<Progress, 'paused' | 'state'>) => isHeld({ paused: p.paused && p.state === 'running', state: p.state });
const paceOf = (p: Pick<Progress, 'paused' | 'state'>, t: number | null) => throughput(heldNow(p) ? null : t);

export function renderPlan(summary: PlanSummary): string {
  const plan = printable(summary);
  const table = new Table({ head: ['node', 'grain', 'partitions', 'first', 'last', 'transform', 'depends on'], style: tableStyle() });
  for (const node of plan.nodes) {
    table.push([
      node.id,
      node.grain,
      number(node.partitions),
      node.first ?? '–',
      node.last ?? '–',
      node.transform,
      node.dependsOn.map((d) => `${d.node} (${describeMapping(d.mapping)})`).join('\n') || '–',
    ]);
  }
  return [
    `${pc.bold(plan.name)}: ${plural(plan.totalPartitions, 'partition')} in ${plural(plan.nodes.length, 'node')}`,
    table.toString(),
    `critical path: ${plural(plan.criticalPathLength, 'partition')} · max width: ${plural(plan.maxWidth, 'partition')} at once`,
    ...(plan.windows ? [`run windows: ${windowsText(plan.windows)} (plan --estimate follows them)`] : []),
    ...(plan.notes ?? []).map((note) => pc.yellow(`note: ${note}`)),
  ].join('\n');
}

const REASON_WORDS: Record<(typeof RECOMPUTE_REASONS)[number], string> = {
  unpublished: 'never published',
  spec: 'spec changed',
  code: 'code changed',
  inputs: 'upstream versions changed',
  upstream: 'upstream runs again',
};

/** `--only-changed`: how many partitions of each node run, and why. */
export function renderChanges(summary: ChangeSummary): string {
  const changes = printable(summary);
  const table = new Table({ head: ['node', 'partitions', 'run', 'keep', 'why they run'], style: tableStyle() });
  for (const node of changes.nodes) {
    const why = RECOMPUTE_REASONS.filter((r) => node.reasons[r] > 0).map((r) => `${number(node.reasons[r])} ${REASON_WORDS[r]}`);
    table.push([node.id, number(node.partitions), number(node.toRun), number(node.skip), why.join('\n') || '–']);
  }
  return [
    `only changed (against ${changes.warehouse}, code version ${changes.codeVersion}): ${number(changes.totalToRun)} partitions run, ${number(changes.totalSkipped)} keep their published versions`,
    table.toString(),
    `compared: ${changes.compared}${changes.compared.includes('sql') ? '' : ' (this ledger does not record the SQL or checks: after changing only those, start without --only-changed)'}`,
    ...codeVersionNote(changes),
  ].join('\n');
}

/**
 * Partitions counted `code changed` when no code version was given: the workers may well run
 * the code that made them under a version of their own (BACKFILL_CODE_VERSION), which this
 * command could not know.
 */
function codeVersionNote(changes: Printable<ChangeSummary>): string[] {
  const code = changes.nodes.reduce((sum, n) => sum + n.reasons.code, 0);
  if (!changes.codeVersionDefaulted || code === 0) return [];
  const was = (changes.codeVersionWas ?? []).map((w) => `${w.value ?? 'none'} (${number(w.partitions)})`).join(', ');
  return [pc.yellow(`note: ${plural(code, 'partition')} count as code changed: made with ${was}, while without --code-version the workers are taken to run ${changes.codeVersion}. If they run the version that made them, give it: --code-version <version> (or BACKFILL_CODE_VERSION)`)];
}

const STATE_COLOR: Record<Progress['state'], (s: string) => string> = {
  running: pc.cyan,
  staged: pc.magenta,
  awaiting_canary: pc.magenta,
  awaiting_approval: pc.yellow,
  waiting_for_window: pc.yellow,
  completed: pc.green,
  completed_with_failures: pc.yellow,
  failed: pc.red,
  cancelled: pc.yellow,
  discarded: pc.yellow,
  canary_failed: pc.red,
  terminated: pc.red,
  timed_out: pc.red,
};

/**
 * A node's rate in the table: its share while it has partitions in hands, `–` while it has none
 * (the share it last had, or its own rate within the backfill's, is not in force). The shown rates
 * once added up to 100/s under a backfill's 60/s (20 + 30 + 20 + 30, two of the nodes idle).
 */
export function nodeRateText(n: Pick<NodeProgress, 'rate' | 'inHands'>): string {
  return n.inHands === 0 ? '–' : rate(n.rate);
}

export function headline(progress: Printable<Progress>): string {
  const state = STATE_COLOR[progress.state](endedText(progress.state) + (progress.paused && progress.state === 'running' ? ' (paused)' : ''));
  // The backfill's rate is shared among the nodes with work: the table's rates are their shares.
  const shared = progress.rate !== null && progress.nodes.length > 1 ? ' shared' : '';
  const limits = `rate ${rate(progress.rate)}${shared} · concurrency ${progress.concurrency ?? 'per node'}`;
  const left = progress.state === 'running' ? ` · ETA ${eta(progress.etaSeconds, progress.nodes.reduce((sum, n) => sum + leftOf(n), 0))}` : '';
  return `${pc.bold(progress.backfillId)} ${state} · ${number(progress.done)}/${number(progress.total)} done · ${paceOf(progress, progress.throughput)}${left} · ${limits}`;
}

/** A message with its numbers taken out: drift messages of one check differ only by them. */
const shapeOf = (message: string) => message.replace(/[-+]?\d[\d,.]*%?/g, '#');

type FailureLine = { message: string; partitions: number; examples: string[]; similar: number };

/** A node's failure groups, those of one type whose messages differ only by their numbers as one, in their order. */
export function groupSimilar(failures: ReadonlyArray<{ message: string; type: string; partitions: number; examples: string[] }>): FailureLine[] {
  const lines = new Map<string, FailureLine>();
  for (const f of failures) {
    const key = `${f.type}\n${shapeOf(f.message)}`;
    const line = lines.get(key);
    if (!line) lines.set(key, { message: f.message, partitions: f.partitions, examples: [...f.examples], similar: 0 });
    else {
      line.partitions += f.partitions;
      line.similar += 1;
      // As many examples as one group shows (three), the first ones met.
      line.examples.push(...f.examples.slice(0, Math.max(0, 3 - line.examples.length)));
    }
  }
  return [...lines.values()];
}

export function renderFailures(progress: Printable<Progress>): string[] {
  const lines: string[] = [];
  for (const node of progress.nodes) {
    for (const failure of groupSimilar(node.failures)) {
      const more = failure.partitions > failure.examples.length ? ` and ${failure.partitions - failure.examples.length} more` : '';
      const similar = failure.similar > 0 ? ` (and ${failure.similar} more like it with other figures)` : '';
      lines.push(pc.red(`  ✗ ${node.id}: ${failure.partitions} failed (${failure.examples.join(', ')}${more}): ${failure.message}${similar}`));
    }
  }
  return lines;
}

/** Partitions published upstream while partitions downstream failed or were blocked, once the backfill has ended (a rolled back one: none). */
export function renderMixed(progress: Printable<Progress & { rollback?: StatusRollback }>): string[] {
  if (isActive(progress.state) || progress.state === 'discarded' || progress.rollback) return [];
  // Staged and never published (or a canary never approved): nothing of it reached the datasets.
  if ((progress.staged && progress.staged.phase !== 'published') || (progress.canary && progress.canary.phase !== 'approved')) return [];
  const mixed = mixedDatasets(progress);
  return mixed === null ? [] : [pc.yellow(`  ⚠ ${mixed}`)];
}

/** After a backfill that completed with failures: what to do about them. */
export function renderRetryHint(progress: Printable<Progress>): string[] {
  const hint = retryFailedHint(progress);
  return hint === null ? [] : [`  next: ${hint}`];
}

function since(iso: string | null): string {
  return iso === null ? '' : ` ${formatDuration(Math.max(0, Date.now() - Date.parse(iso)))} ago`;
}

/** The line of a node whose partitions wait for a worker nobody runs: the node, the queue, the fix (`w`: one of `progress.waiting`). */
function waitingLine(progress: Printable<Progress>, w: Waiting): string {
  const node = progress.nodes.find((n) => n.id === w.node);
  const count = node ? (progress.paused ? node.running + (node.queued ?? 0) : leftOf(node)) : 0;
  const why = w.reason === 'no_worker' ? 'no worker polls it' : `its workers last polled${since(w.lastPollAt)} (stopped, or every slot busy)`;
  return pc.yellow(
    `  ⚠ ${w.node}: ${number(count)} partition${count === 1 ? '' : 's'} wait on task queue '${w.taskQueue}', and ${why}: start a worker with 'backfill worker --no-workflows --task-queue ${shellWord(w.taskQueue)}${transformsFlag(w.transforms)}'`,
  );
}

/** The spec's transform modules as --transforms (paths from the spec's directory), for a worker that runs its partitions. */
const transformsFlag = (transforms: readonly string[] | undefined) => (transforms && transforms.length > 0 ? ` --transforms ${transforms.map(shellWord).join(' ')}` : '');

/** A line per entry of `progress.waiting`, in its order. */
export function renderWaiting(progress: Printable<Progress & { waiting?: Waiting[] }>): string[] {
  return (progress.waiting ?? []).map((w) => waitingLine(progress, w));
}

const budgetLine = (b: BudgetStatus) =>
  `${b.budget} ${number(b.used)}${b.limit !== null ? ` of ${number(b.limit)}` : ''} ${b.unit}${b.reached ? pc.yellow(' (spent)') : ''}`;

/**
 * A hold's reason with the backfill's id in the commands it names, ready to copy: the workflows
 * write them with `<id>` (`raise it with backfill set-budget <id> --retries <more>`).
 */
export function withBackfillId(reason: string, backfillId: string): string {
  return reason.replace(/\bbackfill ([a-z-]+) <id>/g, (_, command: string) => `backfill ${command} ${shellWord(backfillId)}`);
}

/**
 * Under a policy: what holds the backfill (an operator's pause, an approval, a spent budget, a
 * closed run window), the run window, the budgets and the last operator action, with who and why.
 */
/** The most of a reason `status` shows (the audit trail keeps it whole). */
const SHOWN_REASON = 120;

export function renderGovernance(progress: Printable<Progress>): string[] {
  const g = progress.governance;
  if (!g) return [];
  const lines = g.holds.map((h) => pc.yellow(`  ⏸ ${withBackfillId(h.reason, progress.backfillId)}`));
  if (g.window && !g.holds.some((h) => h.kind === 'window')) lines.push(`  run window: ${g.window.description}`);
  const budgets = [g.budgets.retries, g.budgets.cost].filter((b): b is BudgetStatus => b !== null && b.limit !== null);
  if (budgets.length > 0) lines.push(`  budgets: ${budgets.map(budgetLine).join(' · ')}`);
  // The last action applied, not a refused one: anyone who may signal can send refusals, and one would push it out of sight.
  const recent = g.recentActions ?? [];
  let appliedAt = recent.length - 1;
  while (appliedAt >= 0 && recent[appliedAt]!.outcome !== 'applied') appliedAt--;
  const last = appliedAt >= 0 ? recent[appliedAt]! : g.lastAction;
  if (last) {
    const when = utcTime(last.at);
    const change = describeChange(last);
    const reason = last.reason === null ? '' : `: "${last.reason.length > SHOWN_REASON ? `${last.reason.slice(0, SHOWN_REASON)}…` : last.reason}"`;
    const refusedSince = appliedAt >= 0 ? recent.length - appliedAt - 1 : 0;
    const refusals = refusedSince > 0 ? ` (${refusedSince} refused since: backfill audit ${shellWord(progress.backfillId)})` : '';
    lines.push(`  last action: ${last.action}${last.outcome === 'refused' ? ' (refused)' : ''} by ${describeActor(last)} at ${when}${reason}${change !== '' ? ` · ${change}` : ''}${refusals}`);
  }
  return lines;
}

/**
 * `running` counts the partitions of the batches in flight, and `concurrency` caps activities: a
 * batch is one activity that runs its partitions one after another, so more may show running
 * than the cap. Said under the table where that happens, so the two columns do not read as a
 * broken cap.
 */
export function renderBatchedRunning(progress: Printable<Progress>): string[] {
  const over = progress.nodes.filter((n) => n.running > n.concurrency).map((n) => n.id);
  if (over.length === 0) return [];
  return [`  running counts the partitions of batches in flight (${over.join(', ')}): concurrency caps activities, and a batch runs its partitions one after another`];
}

/** The whole status; its text made printable here, once, for every section. */
export function renderStatus(shown: Progress & { waiting?: Waiting[]; stalledSeconds?: number; judgement?: string; activityFailing?: ActivityFailing; rollback?: StatusRollback; workflowTaskFailing?: TaskFailingWarning; refused?: string; refusedLater?: string; failure?: string }): string {
  const progress = printable(shown);
  const table = new Table({
    head: ['node', 'done', 'running', 'failed', 'blocked', 'pending', 'rate', 'concurrency', 'throughput', 'ETA'],
    style: tableStyle(),
  });
  for (const n of progress.nodes) {
    table.push([
      n.id,
      `${number(n.done)}/${number(n.total)}`,
      runningCell(n),
      n.failed > 0 ? pc.red(number(n.failed)) : '0',
      n.blocked > 0 ? pc.yellow(number(n.blocked)) : '0',
      number(n.pending),
      nodeRateText(n) + (n.throttles > 0 ? pc.yellow(` (${n.throttles} throttled)`) : ''),
      String(n.concurrency),
      paceOf(progress, n.throughput),
      // A backfill stopped short (cancelled, failed, discarded) runs nothing more: no node has an ETA.
      STOPPED_SHORT.has(progress.state) ? '–' : eta(n.etaSeconds, leftOf(n)),
    ]);
  }
  const staged = stagedLines(progress);
  const judgement = progress.judgement !== undefined ? [pc.yellow(`  ⚠ not admitted yet: ${progress.judgement}`)] : [];
  const failing = progress.workflowTaskFailing ? [pc.red(`  ⚠ ${progress.workflowTaskFailing.message}`)] : [];
  const stepFailing = progress.activityFailing ? [pc.red(`  ⚠ ${activityFailingText(progress.activityFailing)}`)] : [];
  const stalled =
    progress.stalledSeconds !== undefined
      ? [pc.yellow(`  ⚠ no partition has finished for ${formatDuration(progress.stalledSeconds * 1000)}, so no ETA: are the workers of its task queues running, and their partitions moving? (their logs say)`)]
      : [];
  // After a rollback the retry hint would send the user to a resume that is refused.
  const retryHint = progress.rollback ? [] : renderRetryHint(progress);
  const failed = failedLines(shown.failure);
  return [headline(progress), ...renderRefusal(shown.refused, shown.refusedLater), ...failed, ...failing, ...renderRollback(progress), ...renderGovernance(progress), table.toString(), ...renderBatchedRunning(progress), ...staged, ...renderCanary(progress), ...judgement, ...stepFailing, ...stalled, ...renderWaiting(progress), ...renderFailures(progress), ...renderMixed(progress), ...retryHint].join('\n');
}

/**
 * A run the policy refused at admission: the rules it broke (`why`, one a line) and that nothing
 * of it ran. `later`: it is a later run than the one shown (started then), which stands: a refused
 * resume, or anyone's start of an ended backfill's id (a copy of its input), so whoever sent it
 * may start it again.
 */
export function renderRefusal(why: string | undefined, later?: string): string[] {
  if (why === undefined) return [];
  const rules = why.split('\n').map((line) => pc.red(`      ${printableText(line)}`));
  if (later !== undefined) {
    return [pc.red(`  ✗ a later run of this id, started ${utcTime(Date.parse(later))}, was refused by the policy at its start, so nothing of it ran (the run above stands):`), ...rules, '  next: if that run was yours, meet these rules, then run the same command again'];
  }
  return [pc.red('  ✗ refused by the policy at its start, so nothing of it ran:'), ...rules, '  next: meet these rules, then run the same command again'];
}

/** The backfill's rollback since its last run: its workflow says completed, but its data is undone. */
export function renderRollback(progress: Printable<{ backfillId: string; rollback?: StatusRollback }>): string[] {
  const rollback = progress.rollback;
  if (!rollback) return [];
  const by = rollback.by !== null ? ` by ${rollback.by}` : '';
  const audit = `'backfill audit ${shellWord(progress.backfillId)}' shows what it did`;
  if (rollback.state === 'running') return [pc.magenta(`  ⟲ being rolled back${by}: 'backfill rollback ${shellWord(progress.backfillId)}' attaches to it`)];
  const at = rollback.endedAt !== null ? ` at ${rollback.endedAt} (${since(rollback.endedAt).trim()})` : '';
  if (rollback.state === 'failed') {
    return [pc.red(`  ⟲ a rollback${by} stopped short${at}: the partitions it restored stay restored; run 'backfill rollback ${shellWord(progress.backfillId)}' again (${audit})`)];
  }
  const c = rollback.counts;
  if (c !== null && c.restored + c.removed + c.alreadyRestored === 0) return [pc.magenta(`  ⟲ a rollback${at}${by} ${movedNothing(progress.backfillId, c.leftAlone)}; ${audit}`)];
  const counts = c ? `: ${number(c.restored)} restored, ${number(c.removed)} removed, ${number(c.alreadyRestored)} already restored, ${number(c.leftAlone)} left alone` : '';
  return [pc.magenta(`  ⟲ rolled back${at}${by}${counts} — the data is back at its versions before this backfill; ${audit}`)];
}

/** What a rollback that moved no partition found: nothing the backfill published, or only partitions a later backfill changed. */
function movedNothing(backfillId: string, leftAlone: number): string {
  if (leftAlone === 0) return `found nothing to roll back: ${backfillId} published nothing`;
  return `left every partition alone (${number(leftAlone)}, changed since by a later backfill), so the data is not rolled back: 'backfill rollback ${shellWord(backfillId)} --force' restores them`;
}

/** Why a failed run failed, under its headline (`status`, `wait`, `start --watch`); none when unknown. */
function failedLines(failure: string | undefined): string[] {
  return failure !== undefined ? [pc.red(`  ✗ it failed: ${printableText(failure)}`)] : [];
}

/**
 * A staged backfill's line: what it waits for while staged; once it has ended, what became of
 * what it staged (a run cancelled before its decision leaves it staged until a discard of its own).
 */
function stagedLines(progress: Printable<Progress>): string[] {
  const staged = progress.staged;
  if (progress.state === 'staged') return [pc.magenta(stagedLine(progress))];
  if (!staged || isActive(progress.state) || progress.state === 'discarded') return [];
  const id = shellWord(progress.backfillId);
  if (staged.phase === 'discarded') return [pc.magenta(`staged: discarded after it ended${decidedBy(staged)}: nothing of it was published`)];
  if (!undecided(staged.phase)) return [];
  return [pc.magenta(`staged: it ended before its decision, so nothing of it is published; what it staged stays until 'backfill discard ${id}' drops it (or 'backfill resume ${id}', then publish)`)];
}

const decidedBy = (staged: NonNullable<Progress['staged']>) => (staged.by !== undefined ? ` (by ${staged.by}${staged.at !== undefined ? ` at ${utcTime(staged.at)}` : ''})` : '');

/** What a staged backfill waits for, or the decision under way (the warehouse publishes or drops every version at once). */
function stagedLine(progress: Printable<Progress>): string {
  const id = shellWord(progress.backfillId);
  const phase = progress.staged?.phase;
  const by = progress.staged ? decidedBy(progress.staged) : '';
  if (phase === 'publishing') {
    return `staged: being published${by}, all at once: nothing is published until it is done. A publish whose worker was lost runs again after its activity's 10-minute timeout`;
  }
  if (phase === 'discarding') return `staged: being discarded${by}: nothing is published`;
  return `staged: nothing is published yet. Compare with 'backfill diff ${id}', then 'backfill publish ${id}' or 'backfill discard ${id}'`;
}

/** How a backfill ended, as `wait` and `start --watch` print it: the headline and the failures. */
export function renderEnd(shown: Progress & { failure?: string }): string {
  const progress = printable(shown);
  const failed = failedLines(shown.failure);
  return [headline(progress), ...failed, ...renderFailures(progress), ...renderMixed(progress), ...renderRetryHint(progress)].join('\n');
}

/** What `wait` prints of a backfill that ended: as renderEnd, or its state alone where no worker told its progress. */
export function renderWaited(outcome: { backfillId: string; state: Progress['state']; progress: Progress | null; failure?: string }): string {
  const failure = outcome.failure !== undefined ? { failure: outcome.failure } : {};
  if (outcome.progress) return renderEnd({ ...outcome.progress, ...failure });
  return [`${outcome.backfillId} ${endedText(outcome.state)}`, ...failedLines(outcome.failure)].join('\n');
}

/** A canary: where it is, its diff per dataset once known, and what to do while it waits. */
export function renderCanary(progress: Printable<Progress>): string[] {
  const canary = progress.canary;
  if (!canary) return [];
  const id = progress.backfillId;
  const slice = `${number(canary.partitions)} partitions (${canary.perNode} per dataset, ${canary.pick}, and what they need upstream)`;
  const says: Record<typeof canary.phase, string> = {
    running: `canary: running ${slice}, staged; nothing beyond it runs until it is approved`,
    awaiting: `canary: waits. ${slice} staged. Approve with 'backfill approve ${shellWord(id)} --reason "..."' (the rest runs), or drop with 'backfill discard ${shellWord(id)}'; 'backfill diff ${shellWord(id)}' shows every column`,
    approving: 'canary: being approved (its staged versions are being published)',
    approved: `canary: approved${canary.decision ? ` by ${canary.decision.by}${canary.decision.auto ? ' (within its bounds)' : ''}` : ''}; the rest runs as usual`,
    discarding: 'canary: being discarded',
    discarded: `canary: discarded${canary.decision ? ` by ${canary.decision.by}` : ''}; nothing beyond it was written`,
    failed: 'canary: failed; the backfill stopped and nothing beyond the canary was written',
  };
  // Ended before its decision (cancelled, failed), it waits for nothing: what it staged stays until a discard of its own.
  const endedUndecided = !isActive(progress.state) && undecided(canary.phase);
  const said = endedUndecided ? `canary: it ended before its decision, so nothing of it is published; its slice stays staged until 'backfill discard ${shellWord(id)}' drops it (or 'backfill resume ${shellWord(id)}', then approve)` : says[canary.phase];
  const lines = [pc.magenta(said + (canary.auto ? ` · auto within ${canary.auto.maxRowChange}` : ''))];
  if (canary.note) lines.push(`  ${canary.note}`);
  if (canary.diff && canary.phase !== 'running') {
    const table = new Table({ head: ['canary diff', 'partitions', 'rows before', 'rows after', 'added', 'removed', 'changed', 'rows moved'], style: tableStyle() });
    for (const n of canary.diff.nodes) table.push([n.node, number(n.partitions), number(n.rowsBefore), number(n.rowsAfter), number(n.added), number(n.removed), number(n.changed), formatPercent(rowChangePercent(n))]);
    lines.push(table.toString());
  }
  return lines;
}

/** What a node's progress bar says beside the bar (client/progress-view.ts); `of`: the backfill it is a node of. */
export function barPayload(n: NodeProgress, of: Pick<Progress, 'paused' | 'state'>) {
  const parts = [`${number(n.done)}/${number(n.total)}`];
  if (n.running > 0 || n.queued) parts.push(n.queued ? `${n.running} running, ${n.queued} queued` : `${n.running} running`);
  if (n.failed > 0) parts.push(pc.red(`${n.failed} failed`));
  if (n.blocked > 0) parts.push(pc.yellow(`${n.blocked} blocked`));
  parts.push(paceOf(of, n.throughput), n.etaSeconds === 0 && leftOf(n) === 0 ? 'done' : `ETA ${eta(n.etaSeconds, leftOf(n))}`);
  if (n.throttles > 0) parts.push(pc.yellow(`throttled ×${n.throttles}, now ${rate(n.rate)}`));
  return { details: parts.join(' · ') };
}

/** One upstream input of a version: `days 2024-01-02..2024-01-08 (7, v1 v2)`, or `(0)` when it read nothing of it. */
function describeInput(i: InputVersions): string {
  const range = i.from === i.to ? i.from : `${i.from}..${i.to}`;
  if (i.partitions === 0) return `${i.node} ${range} (0)`;
  const versions = i.versions ? Object.values(i.versions).map((x) => `v${x}`).filter((x, k, all) => all.indexOf(x) === k).join(' ') : `digest ${i.digest}`;
  return `${i.node} ${range} (${i.partitions}, ${versions})`;
}

/** `rolledBack`: the published versions a rollback took off (client/rolled-back-versions.ts), shown as such. */
export function renderLineage(nodeId: string, partitionKey: string, rows: LedgerRow[], rolledBack: ReadonlyMap<number, UndoneBy | null> = new Map()): string {
  const [node, partition, versions] = [printableText(nodeId), printableText(partitionKey), printable(rows)];
  if (versions.length === 0) return `${node} ${partition}: no version in the ledger`;
  const table = new Table({
    head: ['version', 'status', 'backfill', 'rows', 'checksum', 'transform', 'spec', 'code', 'attempt', 'finished', 'took', 'cost', 'inputs'],
    style: tableStyle(),
  });
  for (const v of versions) {
    table.push([
      `${v.version}${v.current ? ' (current)' : ''}`,
      // A version written staged says so once published too: it was published by `backfill publish`.
      rolledBack.has(v.version) ? printableText(rolledBackText(rolledBack.get(v.version) ?? null)) : v.status === 'published' && v.staged ? 'published (staged)' : v.status,
      v.backfillId,
      v.rowCount === null ? '–' : number(v.rowCount),
      v.checksum ? v.checksum.slice(0, 12) : '–',
      v.transform,
      // Each version's own: a version of other SQL or params reads so here, not only in the current one's line below.
      v.specHash ? v.specHash.slice(0, 8) : '–',
      v.codeVersion,
      String(v.attempt),
      v.finishedAt,
      formatDuration(v.durationMs),
      v.cost === null ? '–' : number(v.cost),
      v.inputs.map(describeInput).join('\n') || '–',
    ]);
  }
  const current = versions.find((v) => v.current);
  const params = current ? `\nparameters: ${JSON.stringify(current.params)}${current.specHash ? ` · spec hash ${current.specHash}` : ''}` : '';
  const warnings = versions.flatMap((v) => v.warnings.map((w) => `  v${v.version}: ${w}`));
  const warned = warnings.length > 0 ? `\n${pc.yellow('check warnings:')}\n${warnings.join('\n')}` : '';
  const errors = versions.filter((v) => v.error !== null).map((v) => `  v${v.version}: ${v.error}`);
  const failed = errors.length > 0 ? `\n${pc.red('failed checks:')}\n${errors.join('\n')}` : '';
  return `${pc.bold(`${node} ${partition}`)}: ${versions.length} version(s)${params}\n${table.toString()}${warned}${failed}`;
}
