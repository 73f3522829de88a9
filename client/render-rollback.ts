/** Human output of `backfill rollback`: what was restored, removed, and left alone (and by whom). */
import Table from 'cli-table3';
import pc from 'picocolors';
import { UNPUBLISHED, type RollbackSummary } from '../core/rollback.ts';
import type { LeaseHolder, RollbackRecord } from '../activities/warehouse/types.ts';
import { leasedRollbackRefusal } from '../core/busy-datasets.ts';
import type { StaleDownstream } from './stale-downstream.ts';
import type { RollbackWaiting } from './backfill-client.ts';
import { workerCommand } from './worker-hint.ts';
import { shellWord } from '../core/shell-word.ts';
import { nameText } from '../core/value-text.ts';
import { number } from './counts.ts';

const partitions = (n: number) => `${number(n)} partition${n === 1 ? '' : 's'}`;

/**
 * Who changed the partitions left alone: `changed since by bf-3` when one backfill did them all
 * (its count is the line's own), else each with its count: `changed since: 20 by bf-3, 8 unpublished`.
 */
function changedSince(changedBy: Record<string, number>): string {
  const who = (backfill: string) => (backfill === UNPUBLISHED ? 'unpublished' : `by ${backfill}`);
  const entries = Object.entries(changedBy);
  if (entries.length === 1) return entries[0]![0] === UNPUBLISHED ? 'unpublished since' : `changed since ${who(entries[0]![0])}`;
  return `changed since: ${entries.map(([backfill, n]) => `${number(n)} ${who(backfill)}`).join(', ')}`;
}

/** Why a rollback that found nothing of the backfill published did nothing (null: something of it is published). */
function nothingPublished(summary: RollbackSummary): string | null {
  const { backfillId } = summary;
  if (summary.restored + summary.removed + summary.leftAlone > 0) return null;
  const undone = summary.undone ?? 0;
  if (summary.alreadyRestored > 0) return `${backfillId} was rolled back already; nothing of it is published`;
  if (undone > 0) return `nothing of ${backfillId} is published: other backfills' rollbacks undid all of it`;
  return null;
}

/** What a rollback did, in a few words: a rollback that left everything alone did not roll the backfill back. */
function rolledBackHeadline(summary: RollbackSummary): string {
  const { backfillId, leftAlone } = summary;
  if (summary.restored + summary.removed > 0) return leftAlone > 0 ? `rolled back ${backfillId} in part (${partitions(leftAlone)} left alone)` : `rolled back ${backfillId}`;
  if (leftAlone > 0) return `rolled back nothing of ${backfillId}: all ${partitions(leftAlone)} left alone`;
  return nothingPublished(summary) ?? `nothing to roll back: ${backfillId} published nothing`;
}

/** Which rollbacks of other backfills undid partitions of this one: `3 by the forced rollback of b6 (b6/rollback-…)`. */
export function undoneByText(summary: Pick<RollbackSummary, 'undoneBy'>): string {
  return (summary.undoneBy ?? [])
    .map((u) => `${number(u.partitions)} by ${u.backfillId === UNPUBLISHED ? 'a rollback' : `the ${u.forced ? 'forced ' : ''}rollback of ${u.backfillId} (${u.rollbackId})`}`)
    .join(', ');
}

/**
 * What a dry run advises next: the rollback, when it would restore or remove something; else why
 * it would do nothing (null when all it finds is left alone: the --force line says what would).
 */
function previewNext(summary: RollbackSummary): string | null {
  const { backfillId } = summary;
  if (summary.restored + summary.removed > 0) return `  run 'backfill rollback ${shellWord(backfillId)}${summary.force ? ' --force' : ''}' to do it`;
  if (summary.leftAlone > 0) return null;
  return `  nothing to do: ${nothingPublished(summary) ?? `${backfillId} published nothing`}`;
}

/**
 * `preview`: a dry run (`rollback --dry-run`): what it would do, said as such; `historyGone`: the
 * server keeps no history of the backfill; `fromLedger`: nodes only the ledger names.
 */
export function renderRollback(summary: RollbackSummary, preview?: { historyGone: boolean; fromLedger: readonly string[]; refusedBy?: readonly LeaseHolder[] }): string {
  const { backfillId } = summary;
  const would = (done: string, todo: string) => (preview ? todo : done);
  const lines = [
    preview
      ? `${pc.bold(`would roll back ${backfillId}`)} (dry run: nothing was started or changed)`
      : `${pc.bold(rolledBackHeadline(summary))} (rollback ${summary.rollbackId})`,
  ];
  // Only what happened (or would): a rollback that only removes says nothing of restoring.
  if (summary.restored > 0) {
    lines.push(`  ${would('restored:        ', 'would restore:   ')} ${partitions(summary.restored)} to their version before ${backfillId} (${would('checksums verified', 'each checksum verified as it is restored')})`);
  }
  if (summary.removed > 0) lines.push(`  ${would('removed:         ', 'would remove:    ')} ${partitions(summary.removed)} that ${backfillId} had created`);
  if (summary.alreadyRestored > 0) lines.push(`  already restored: ${partitions(summary.alreadyRestored)} (rolled back before)`);
  if ((summary.undone ?? 0) > 0) {
    lines.push(pc.yellow(`  undone before:    ${partitions(summary.undone)} of ${backfillId} were unpublished already, ${undoneByText(summary)}: left as they are`));
  }
  if (summary.forced > 0) lines.push(`  ${would('forced:          ', 'would force:     ')} ${partitions(summary.forced)} over a later backfill's version (--force)`);
  if (summary.leftAlone > 0) {
    lines.push(pc.yellow(`  ${would('left alone:      ', 'would leave alone:')} ${partitions(summary.leftAlone)} ${changedSince(summary.changedBy)}`));
    for (const p of summary.leftAloneExamples.slice(0, 10)) {
      lines.push(`    ${p.node} ${p.partition}: ${backfillId} published version ${p.version}, now ${p.currentVersion === null ? 'none' : `version ${p.currentVersion}`} by ${p.changedBy ?? '–'}`);
    }
    if (summary.leftAlone > 10) lines.push(`    … and ${number(summary.leftAlone - 10)} more (--json lists up to ${summary.leftAloneExamples.length})`);
    const too = summary.restored + summary.removed > 0 ? ' too' : '';
    lines.push(`  run 'backfill rollback ${shellWord(backfillId)} --force' to restore them${too}, undoing those later changes`);
  }
  if (preview?.historyGone) {
    lines.push(
      pc.yellow(
        `  from the ledger:  the server no longer keeps the history of ${backfillId} (the namespace's retention): its nodes and their order come from the ledger's lineage, ` +
          `and a worker with a policy judges the rollback (the policy it was admitted under is unknown)`,
      ),
    );
  } else if (preview && preview.fromLedger.length > 0) {
    lines.push(
      pc.yellow(
        `  from the ledger:  ${preview.fromLedger.join(', ')}: no run of ${backfillId} that the server still keeps names ${preview.fromLedger.length === 1 ? 'that node' : 'those nodes'}; the ledger holds versions of ${backfillId} there, and the rollback walks ${preview.fromLedger.length === 1 ? 'it' : 'them'} in the order of the ledger's lineage`,
      ),
    );
  }
  const refusedBy = preview?.refusedBy ?? [];
  const first = refusedBy[0];
  if (first) {
    const more = refusedBy.length > 1 ? ` (also ${refusedBy.slice(1).map((h) => `${h.node} by '${h.backfillId}'`).join(', ')})` : '';
    lines.push(pc.red(`  would be refused now: ${leasedRollbackRefusal(first, backfillId)}${more}`));
  }
  const next = preview && !first ? previewNext(summary) : null;
  const withUndone = (summary.undone ?? 0) > 0;
  if (next !== null) lines.push(next);
  const table = new Table({
    head: ['node', ...(preview ? ['would restore', 'would remove', 'already restored', 'would leave alone'] : ['restored', 'removed', 'already restored', 'left alone']), ...(withUndone ? ['undone before'] : [])],
    style: process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] },
  });
  for (const n of summary.nodes) table.push([n.node, number(n.restored), number(n.removed), number(n.alreadyRestored), number(n.leftAlone), ...(withUndone ? [number(n.undone ?? 0)] : [])]);
  return [...lines, table.toString()].join('\n');
}

/** What a rollback leaves stale downstream, and how to recompute it (empty: nothing). */
export function renderDownstream(downstream: readonly StaleDownstream[], preview: boolean): string[] {
  if (downstream.length === 0) return [];
  const replaced = preview ? 'would replace' : 'replaced';
  return [
    ...downstream.map((d) => {
      const known = d.partitions > 0 ? `${partitions(d.partitions)} of ${d.node} ${d.partitions === 1 ? 'was' : 'were'} computed from versions this rollback ${replaced} (e.g. ${d.examples.join(', ')})` : '';
      const one = d.maybe === 1;
      const maybe = d.maybe
        ? `${partitions(d.maybe)}${known ? ' more' : ` of ${d.node}`} read${one ? 's' : ''} over 100 partitions upstream${one ? '' : ' each'}, a range that holds versions it ${replaced} (the ledger keeps a digest of ${one ? 'its' : 'their'} inputs, not each version): ${one ? 'it' : 'they'} may have been computed from them`
        : '';
      return pc.yellow(`  downstream:       ${[known, maybe].filter((t) => t !== '').join('; ')}; left as they are`);
    }),
    "  recompute them: 'backfill plan <spec> --only-changed' lists them, 'backfill start <spec> --only-changed' runs them",
  ];
}

/** Said when the rollback's downstream could not be read: this machine does not reach the workers' warehouse. */
export function downstreamUnchecked(): string {
  return pc.yellow(
    "  downstream:       not checked: this machine does not reach the warehouse the workers restored in (give --warehouse or BACKFILL_WAREHOUSE). Partitions downstream computed from the versions it replaced stay as they are: 'backfill plan <spec> --only-changed --warehouse <warehouse>' lists them",
  );
}

/** A partition's restores, for its lineage: which rollback moved its published version, from what to what. */
export function renderRestores(records: readonly RollbackRecord[]): string[] {
  if (records.length === 0) return [];
  const version = (v: number | null) => (v === null ? 'none' : `v${v}`);
  return [
    'rollbacks:',
    ...records.map(
      (r) => `  ${r.at}  ${version(r.fromVersion)} → ${version(r.toVersion)}  rolling back ${r.backfillId} (${r.rollbackId})${r.forced ? ', forced over a later backfill' : ''}`,
    ),
  ];
}

/**
 * What `rollback` says (on stderr) when no worker takes the rollback: the queue it waits on, the
 * worker that runs it, and that it waits on, durable, whatever becomes of this command.
 */
export function rollbackWaitsLine(backfillId: string, waiting: RollbackWaiting): string {
  if (waiting.judgement !== undefined) {
    return (
      `the rollback of ${backfillId} waits for a worker with a policy to judge it; the last that took it declined: ${waiting.judgement}. ` +
      `Ctrl-C stops only this wait: the rollback stays queued on the server ('backfill rollback ${shellWord(backfillId)}' again joins it).`
    );
  }
  const worker = workerCommand({ nodes: waiting.activityQueues.map((taskQueue) => ({ taskQueue })) }, [], undefined, waiting.taskQueue);
  return (
    `the rollback of ${backfillId} waits for a worker: none takes it from its workflow task queue ${nameText(waiting.taskQueue)}. ` +
    `Start one with '${worker}' (on the warehouse the backfill wrote); the rollback starts as soon as one does, and this command then prints its summary. ` +
    `Ctrl-C stops only this wait: the rollback stays queued on the server ('backfill rollback ${shellWord(backfillId)}' again joins it).`
  );
}
