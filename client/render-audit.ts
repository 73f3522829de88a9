/** Human output of `backfill audit`: one row per action. */
import Table from 'cli-table3';
import pc from 'picocolors';
import { describeActor, describeChange, type AuditEntry } from '../core/audit.ts';
import { printable } from './printable.ts';

const tableStyle = () => (process.stdout.isTTY ? { head: ['cyan'] } : { head: [], border: [] });

export function renderAudit(backfillId: string, shown: readonly AuditEntry[]): string {
  const entries = printable(shown);
  if (entries.length === 0) return `${backfillId}: no actions recorded (it started before backfill kept an audit trail, or under a release without one)`;
  const table = new Table({ head: ['#', 'when (UTC)', 'action', 'who', 'why', 'what'], style: tableStyle(), wordWrap: true, colWidths: [5, 22, 16, 28, 34, 40] });
  for (const e of entries) {
    table.push([
      String(e.seq),
      new Date(e.at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ''),
      e.outcome === 'refused' ? pc.red(`${e.action} (refused)`) : e.action,
      describeActor(e),
      e.reason ?? pc.dim('–'),
      describeChange(e),
    ]);
  }
  return [`${pc.bold(backfillId)}: ${entries.length} action${entries.length === 1 ? '' : 's'}`, table.toString()].join('\n');
}
