/**
 * What workflow histories tell the report: the input of each run, when the backfill was
 * paused and went on (its audit trail), and when a downstream system
 * throttled a node (its activities' results). Payloads are decoded by the caller's
 * converter, so this stays a function of the events.
 */
import type { temporal } from '@temporalio/proto';
import { optionalTsToMs } from '@temporalio/common';
import type { AuditEntry } from '../../core/audit.ts';
import type { BackfillResult, FailureGroup, NodeReport, RunPartitionsResult } from '../../core/protocol.ts';
import type { RangesJSON } from '../../core/ranges.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import type { Span } from './model.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;
export type Decode = (payload: Payload) => unknown;

export type RunInfo<Input> = { runId: string; firstRunId: string; input: Input | undefined; startMs: number; endMs: number | null };

function timeOf(event: HistoryEvent): number {
  return optionalTsToMs(event.eventTime) ?? 0;
}

/** A run's input, when it started and when it closed (null while it runs). */
export function runInfo<Input>(runId: string, events: readonly HistoryEvent[], decode: Decode): RunInfo<Input> {
  const first = events[0];
  const started = first?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  const last = events[events.length - 1];
  const closed =
    last &&
    (last.workflowExecutionCompletedEventAttributes ||
      last.workflowExecutionFailedEventAttributes ||
      last.workflowExecutionCanceledEventAttributes ||
      last.workflowExecutionTerminatedEventAttributes ||
      last.workflowExecutionTimedOutEventAttributes ||
      last.workflowExecutionContinuedAsNewEventAttributes);
  return {
    runId,
    firstRunId: started?.firstExecutionRunId || runId,
    input: payload ? (decode(payload) as Input) : undefined,
    startMs: first ? timeOf(first) : 0,
    endMs: closed ? timeOf(last) : null,
  };
}

/**
 * The spec a run ended carrying when one (`resume --spec`) replaced its input's while it ran
 * (`BackfillCarry.spec` in its result); null when it did not, or has not ended.
 */
export function endSpec(events: readonly HistoryEvent[], decode: Decode): ResolvedSpec | null {
  const payload = events[events.length - 1]?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  if (!payload) return null;
  const result = decode(payload) as Partial<BackfillResult> | null;
  return result?.carry?.spec ?? null;
}

/** A budget pause names each budget it found spent: "the cost budget is spent: …". */
const SPENT = /the (retries|cost) budget is spent/g;

/**
 * When the backfill paused and went on, from its audit trail (in order): an operator's pause
 * and resume, and a spent budget until `set-budget` raised it. Only applied entries count: a
 * refused pause (a junk argument sent by hand, a policy's no) paused nothing.
 */
export function pauseToggles(entries: readonly AuditEntry[]): Array<{ atMs: number; paused: boolean }> {
  const toggles: Array<{ atMs: number; paused: boolean }> = [];
  let operator = false;
  const spent = new Set<string>();
  let paused = false;
  for (const entry of entries) {
    if (entry.outcome !== 'applied') continue;
    const d = entry.details;
    // A new run of an ended backfill (resume, retry-failed) starts unpaused.
    if (entry.action === 'pause' || entry.action === 'resume' || entry.action === 'retry-failed') operator = entry.action === 'pause';
    else if (entry.action === 'budget-pause') for (const [, budget] of String(d.why ?? '').matchAll(SPENT)) spent.add(budget!);
    else if (entry.action === 'set-budget' && typeof d.budget === 'string' && typeof d.limit === 'number' && typeof d.used === 'number') {
      if (d.used >= d.limit) spent.add(d.budget);
      else spent.delete(d.budget);
    } else continue;
    const now = operator || spent.size > 0;
    if (now !== paused) toggles.push({ atMs: entry.at, paused: now });
    paused = now;
  }
  return toggles;
}

/** The spans during which the backfill was paused; one still open ends at `endMs`. */
export function pausedSpans(toggles: ReadonlyArray<{ atMs: number; paused: boolean }>, endMs: number, pausedAtStart: { atMs: number } | null = null): Span[] {
  const spans: Span[] = [];
  let since: number | null = pausedAtStart?.atMs ?? null;
  for (const toggle of [...toggles].sort((a, b) => a.atMs - b.atMs)) {
    if (toggle.paused && since === null) since = toggle.atMs;
    else if (!toggle.paused && since !== null) {
      spans.push({ startMs: since, endMs: toggle.atMs });
      since = null;
    }
  }
  if (since !== null) spans.push({ startMs: since, endMs: Math.max(since, endMs) });
  return spans;
}

export type ThrottleEvent = { atMs: number; index: number; message: string };

/** Each time an activity of a node workflow came back throttled (RunPartitionsResult.throttled). */
export function throttleEvents(events: readonly HistoryEvent[], decode: Decode): ThrottleEvent[] {
  const throttles: ThrottleEvent[] = [];
  for (const event of events) {
    const payload = event.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    if (!payload) continue;
    const result = decode(payload) as Partial<RunPartitionsResult> | null;
    if (result?.throttled) throttles.push({ atMs: timeOf(event), index: result.throttled.index, message: result.throttled.message });
  }
  return throttles;
}

/** The pace a node reported (`NodeStats.rate`, after its slow-downs; null: unlimited), and when. */
export type ReportedPace = { atMs: number; rate: number | null };

/** A throttled span: how long the node's pace stayed reduced, whether it climbed back in the span, and the throttles in it. */
export type ThrottledSpan = Span & { count: number; recovered: boolean };

const below = (rate: number | null, pace: number | null) => rate !== null && (pace === null || rate < pace);

/**
 * A node's throttled spans, from its throttles (`times`) and the paces it reported to the parent
 * (`paces`, in time order): a throttle halves the node's pace (AIMD), which then climbs back over
 * some seconds. A span runs from a throttle until the first report whose pace is back where it was
 * before the throttle (the last report before it; without one, the highest pace the node reported,
 * or unlimited); a throttle while the pace is still reduced belongs to the same span. A pace
 * never seen back ends its span at the node's last report (it had no more work to pace), not
 * recovered. Reports come a second or so apart, so an end is as precise as that.
 */
export function throttledSpans(times: readonly number[], paces: readonly ReportedPace[]): ThrottledSpan[] {
  const sorted = [...times].sort((a, b) => a - b);
  const reports = [...paces].sort((a, b) => a.atMs - b.atMs);
  const highest = reports.some((r) => r.rate === null) ? null : reports.reduce((max, r) => Math.max(max, r.rate!), 0);
  const spans: ThrottledSpan[] = [];
  let t = 0;
  while (t < sorted.length) {
    const startMs = sorted[t]!;
    const before = reports.filter((r) => r.atMs < startMs).at(-1);
    const pace = before ? before.rate : highest;
    let count = 0;
    let last = startMs;
    let end: number | null = null;
    for (const report of reports) {
      if (report.atMs <= startMs) continue;
      // Throttles up to this report are in the span: the pace it shows is after them.
      while (t < sorted.length && sorted[t]! < report.atMs) {
        last = sorted[t++]!;
        count++;
      }
      if (report.atMs > last && !below(report.rate, pace)) {
        end = report.atMs;
        break;
      }
    }
    if (end === null) {
      while (t < sorted.length) {
        last = sorted[t++]!;
        count++;
      }
    }
    const lastReport = reports.at(-1)?.atMs ?? last;
    spans.push({ startMs, endMs: end ?? Math.max(last, lastReport), count: Math.max(1, count), recovered: end !== null });
  }
  return spans;
}

/** What one node workflow reported to the parent run (its `nodeReport` signal): partitions done, failures with their message, and its pace then. */
export type ReportedWork = { atMs: number; node: string; done: RangesJSON; failures: FailureGroup[]; rate?: number | null };

/**
 * The node reports a parent run received, in order: the partitions each node finished and those
 * that failed (after their retries), with the failure's message. Only signals sent by the node's
 * own workflow (`backfill/<id>/<node>`) count, where the server says who sent them; a report of
 * another shape is left out (the workflow ignored it too).
 */
export function reportedWork(events: readonly HistoryEvent[], decode: Decode, nodeWorkflowIdOf: (node: string) => string): ReportedWork[] {
  const reports: ReportedWork[] = [];
  for (const event of events) {
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled?.signalName !== 'nodeReport') continue;
    const payload = signaled.input?.payloads?.[0];
    if (!payload) continue;
    const report = decode(payload) as Partial<NodeReport> | null;
    if (typeof report !== 'object' || report === null || typeof report.node !== 'string' || typeof report.done !== 'string' || !Array.isArray(report.failures)) continue;
    const sender = signaled.externalWorkflowExecution?.workflowId;
    if (sender && sender !== nodeWorkflowIdOf(report.node)) continue;
    const failures = report.failures.filter((g): g is FailureGroup => typeof g?.message === 'string' && typeof g.type === 'string' && typeof g.ranges === 'string');
    const rate = report.stats?.rate;
    reports.push({ atMs: timeOf(event), node: report.node, done: report.done, failures, ...(rate === null || (typeof rate === 'number' && Number.isFinite(rate)) ? { rate } : {}) });
  }
  return reports;
}
