/** The report's operator actions: the audit entries of a backfill run's histories and of its rollbacks, as the report shows them. */
import { actorsOf, describeChange, isLimitChange } from '../../core/audit.ts';
import { numberedInTimeOrder, type AuditRecord } from '../audit.ts';
import type { ReportAction } from './model.ts';

/** The audit trail as the report shows it, in time order and numbered as `audit` numbers it (a rollback's entries counted from 1 again). */
export function reportActions(records: readonly AuditRecord[]): ReportAction[] {
  const ordered = numberedInTimeOrder(records);
  const actors = actorsOf(ordered);
  return ordered.map((r, i) => ({
    seq: r.seq,
    at: new Date(r.at).toISOString(),
    action: r.action,
    identity: r.identity,
    actor: actors[i]!,
    verified: r.verified,
    reason: r.reason,
    outcome: r.outcome,
    details: r.details,
    change: describeChange(r),
    limitChange: isLimitChange(r),
    workflowId: r.workflowId,
  }));
}
