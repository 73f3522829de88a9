/** Human output of `backfill audit`: one row per action. */
import Table from 'cli-table3';
import pc from 'picocolors';
import { actorsOf, describeChange, type AuditEntry } from '../core/audit.ts';
import { printable } from './printable.ts';

const tableStyle = () => (process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] });

/** Column widths, padding included. The action and reason columns share theirs: see actionWidth. */
const WIDTHS = { seq: 5, when: 22, actionAndWhy: 50, who: 28, what: 40 } as const;
const ACTION_HEAD = 'action';
const MARKS = { refused: '(refused)', failed: '(failed)' } as const;
/** The narrowest the reason's column gets, however long an action name is. */
const MIN_WHY = 20;

/**
 * An action name is one word: a wrapped cell cuts a word longer than its column (set-concurrency
 * read `set-concurren…`), so the column fits the longest one, and the refusal mark goes on a
 * line of its own (so does a failure's). The reason is free text and wraps in what is left.
 */
function actionWidth(entries: readonly AuditEntry[]): number {
  const longest = Math.max(ACTION_HEAD.length, ...Object.values(MARKS).map((m) => m.length), ...entries.map((e) => e.action.length));
  return longest + 2;
}

export function renderAudit(backfillId: string, shown: readonly AuditEntry[]): string {
  const entries = printable(shown);
  if (entries.length === 0) return `${backfillId}: no actions recorded (it started before backfill kept an audit trail, or under a release without one)`;
  const action = actionWidth(entries);
  const why = Math.max(MIN_WHY, WIDTHS.actionAndWhy - action);
  const table = new Table({
    head: ['#', 'when (UTC)', ACTION_HEAD, 'who', 'why', 'what'],
    style: tableStyle(),
    wordWrap: true,
    colWidths: [WIDTHS.seq, WIDTHS.when, action, WIDTHS.who, why, WIDTHS.what],
  });
  const actors = actorsOf(entries);
  for (const [i, e] of entries.entries()) {
    table.push([
      String(e.seq),
      new Date(e.at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ''),
      e.outcome === 'applied' ? e.action : pc.red(`${e.action}\n${MARKS[e.outcome]}`),
      actors[i]!,
      e.reason ?? pc.dim('–'),
      describeChange(e),
    ]);
  }
  return [`${pc.bold(backfillId)}: ${entries.length} action${entries.length === 1 ? '' : 's'}`, table.toString()].join('\n');
}
