/** The report's data: what histories and ledger rows say, reduced to figures, spans and timeline marks. */
import { defaultPayloadConverter, msNumberToTs } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import type { LedgerRow, Warehouse } from '../../activities/warehouse/types.ts';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { gatherReport } from '../../client/report/gather.ts';
import { fixedFailures } from '../../client/report/failures.ts';
import { pauseToggles, pausedSpans, reportedWork, runInfo, throttleEvents, throttledSpans, type Decode, type ReportedWork } from '../../client/report/history.ts';
import { RangeSet } from '../../core/ranges.ts';
import { renderMarkdown } from '../../client/report/markdown.ts';
import { durationStats, groupMessages, ledgerFigures, nodeChanges, percentile, versionKey, warningsOf } from '../../client/report/summarize.ts';
import { buildTimeline, MAX_SLOTS, RATE_BINS, rateOverTime } from '../../client/report/timeline.ts';
import type { AuditEntry } from '../../core/audit.ts';
import { resolveSpec } from '../../core/spec.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const T0 = Date.UTC(2025, 0, 1);
const decode: Decode = (payload) => defaultPayloadConverter.fromPayload(payload);
const at = (s: number) => msNumberToTs(T0 + s * 1000);
const payload = (value: unknown) => defaultPayloadConverter.toPayload(value);

describe('histories', () => {
  const parent: HistoryEvent[] = [
    { eventTime: at(0), workflowExecutionStartedEventAttributes: { firstExecutionRunId: 'first', input: { payloads: [payload({ backfillId: 'b', carry: { runKey: 'key' } })] } } },
    { eventTime: at(10), workflowExecutionSignaledEventAttributes: { signalName: 'nodeReport' } },
    { eventTime: at(20), workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name: 'pause' } } } },
    { eventTime: at(25), workflowExecutionSignaledEventAttributes: { signalName: 'pause' } },
    { eventTime: at(30), workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { input: { name: 'resume' } } } },
    { eventTime: at(40), workflowExecutionSignaledEventAttributes: { signalName: 'pause' } },
    { eventTime: at(50), workflowExecutionContinuedAsNewEventAttributes: { newExecutionRunId: 'next' } },
  ];

  it('reads a run: its input, start and close', () => {
    expect(runInfo('this', parent, decode)).toEqual({ runId: 'this', firstRunId: 'first', input: { backfillId: 'b', carry: { runKey: 'key' } }, startMs: T0, endMs: T0 + 50_000 });
    expect(runInfo('open', parent.slice(0, 3), decode).endMs).toBeNull();
  });

  const entry = (seq: number, s: number, action: AuditEntry['action'], details: AuditEntry['details'] = {}, outcome: AuditEntry['outcome'] = 'applied'): AuditEntry => ({ seq, at: T0 + s * 1000, action, identity: 'ops', verified: false, reason: null, outcome, details });
  const trail: AuditEntry[] = [
    entry(1, 0, 'start'),
    entry(2, 20, 'pause', { paused: true, previous: false }),
    entry(3, 25, 'pause', { paused: true, previous: true }),
    entry(4, 30, 'resume', { paused: false, previous: true }),
    entry(5, 40, 'pause', { paused: true, previous: false }),
  ];

  it('finds pauses and resumes in the audit trail; a repeated pause changes nothing', () => {
    expect(pauseToggles(trail)).toEqual([
      { atMs: T0 + 20_000, paused: true },
      { atMs: T0 + 30_000, paused: false },
      { atMs: T0 + 40_000, paused: true },
    ]);
  });

  it('turns them into paused spans; a pause still on ends at the end', () => {
    expect(pausedSpans(pauseToggles(trail), T0 + 60_000)).toEqual([
      { startMs: T0 + 20_000, endMs: T0 + 30_000 },
      { startMs: T0 + 40_000, endMs: T0 + 60_000 },
    ]);
    expect(pausedSpans([{ atMs: 5, paused: false }], 10, { atMs: 1 })).toEqual([{ startMs: 1, endMs: 5 }]);
    expect(pausedSpans([], 10)).toEqual([]);
  });

  it('ends a pause at the new run of the ended backfill (a resume, or a retry-failed): it starts unpaused', () => {
    for (const action of ['resume', 'retry-failed'] as const) {
      const goneOn = [entry(1, 0, 'start'), entry(2, 10, 'pause', { paused: true, previous: false }), entry(3, 30, action, { resumed: true, partitions: 10 })];
      expect(pausedSpans(pauseToggles(goneOn), T0 + 60_000)).toEqual([{ startMs: T0 + 10_000, endMs: T0 + 30_000 }]);
    }
  });

  it('draws no pause the backfill refused (a pause signal with a junk argument, a policy that says no)', () => {
    const refused = [entry(1, 0, 'start'), entry(2, 10, 'pause', { why: 'the policy allows pause only to oncall' }, 'refused')];
    expect(pausedSpans(pauseToggles(refused), T0 + 600_000)).toEqual([]);
  });

  it('draws a spent budget as paused until set-budget raises it, and a resume does not lift it', () => {
    const budget = [
      entry(1, 0, 'start'),
      entry(2, 10, 'budget-pause', { why: 'the cost budget is spent: 10 of 10 partition-seconds; raise it with backfill set-budget <id> --cost <more> to go on' }),
      entry(3, 20, 'resume', { paused: false, previous: false }),
      entry(4, 30, 'set-budget', { budget: 'cost', limit: 8, previous: 10, used: 10 }),
      entry(5, 40, 'set-budget', { budget: 'cost', limit: 20, previous: 8, used: 10 }),
      entry(6, 50, 'set-budget', { budget: 'cost', limit: 5, previous: 20, used: 12 }),
    ];
    expect(pausedSpans(pauseToggles(budget), T0 + 60_000)).toEqual([
      { startMs: T0 + 10_000, endMs: T0 + 40_000 },
      { startMs: T0 + 50_000, endMs: T0 + 60_000 },
    ]);
  });

  it('finds throttled activity results, and groups throttles close in time into spans', () => {
    const node: HistoryEvent[] = [
      { eventTime: at(0), activityTaskCompletedEventAttributes: { result: { payloads: [payload({ finished: [] , throttled: { index: 4, message: 'slow down' } })] } } },
      { eventTime: at(1), activityTaskCompletedEventAttributes: { result: { payloads: [payload({ finished: [{ index: 5 }] })] } } },
      { eventTime: at(2), activityTaskCompletedEventAttributes: { result: { payloads: [payload({ finished: [], throttled: { index: 6, message: 'slow down' } })] } } },
      { eventTime: at(3), activityTaskScheduledEventAttributes: {} },
    ];
    const events = throttleEvents(node, decode);
    expect(events).toEqual([
      { atMs: T0, index: 4, message: 'slow down' },
      { atMs: T0 + 2000, index: 6, message: 'slow down' },
    ]);
  });

  // Before, a span was the throttles a few seconds apart: one throttle read 0ms, while the node ran slower for a while after it.
  it('a throttled span lasts until the pace the node reports is back where it was before the throttle', () => {
    const s = (seconds: number) => T0 + seconds * 1000;
    const paces = [
      { atMs: s(1), rate: 6 },
      // Throttled at 2 s: halved, then climbing back; throttled again at 6.5 s while still reduced.
      { atMs: s(3), rate: 3 },
      { atMs: s(5), rate: 3.6 },
      { atMs: s(7), rate: 2 },
      { atMs: s(20), rate: 5.9 },
      { atMs: s(21), rate: 6 },
      // Throttled at 40 s; the node finished before its pace came back.
      { atMs: s(41), rate: 3 },
      { atMs: s(44), rate: 3.9 },
    ];
    expect(throttledSpans([s(6.5), s(2), s(40)], paces)).toEqual([
      { startMs: s(2), endMs: s(21), count: 2, recovered: true },
      { startMs: s(40), endMs: s(44), count: 1, recovered: false },
    ]);
    // Unlimited (null) before: back when the node says unlimited again.
    expect(throttledSpans([s(2)], [{ atMs: s(1), rate: null }, { atMs: s(3), rate: 8 }, { atMs: s(33), rate: null }])).toEqual([{ startMs: s(2), endMs: s(33), count: 1, recovered: true }]);
    // Throttled before its first report: back at the highest pace it reported.
    expect(throttledSpans([s(0)], [{ atMs: s(1), rate: 2 }, { atMs: s(9), rate: 4 }, { atMs: s(10), rate: 4 }])).toEqual([{ startMs: s(0), endMs: s(9), count: 1, recovered: true }]);
    // Nothing reported after it: a span of the throttle alone.
    expect(throttledSpans([s(5)], [{ atMs: s(1), rate: 6 }])).toEqual([{ startMs: s(5), endMs: s(5), count: 1, recovered: false }]);
  });
});

function row(partition: string, extra: Partial<LedgerRow> = {}): LedgerRow {
  return {
    node: 'n',
    partition,
    version: 1,
    status: 'published',
    backfillId: 'b',
    runKey: 'r',
    workflowId: 'w',
    rowCount: 10,
    checksum: `c-${partition}`,
    schemaHash: 's',
    transform: 'sql',
    params: {},
    codeVersion: 'v',
    inputs: [],
    attempt: 1,
    executions: 1,
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:00:01.000Z',
    durationMs: 1000,
    previousVersion: null,
    error: null,
    warnings: [],
    specHash: null,
    cost: null,
    current: true,
    ...extra,
  };
}

describe('failures that did not last', () => {
  const ranges = (...indexes: number[]) => RangeSet.of(...indexes.map((i): [number, number] => [i, i + 1])).toJSON();
  const work = (node: string, done: number[], failures: Array<[string, number[]]> = []): ReportedWork => ({ atMs: T0, node, done: ranges(...done), failures: failures.map(([message, f]) => ({ message, type: 'NonRetryable', ranges: ranges(...f) })) });
  const signal = (s: number, report: unknown, sender?: string): HistoryEvent => ({
    eventTime: at(s),
    workflowExecutionSignaledEventAttributes: { signalName: 'nodeReport', input: { payloads: [payload(report)] }, ...(sender ? { externalWorkflowExecution: { workflowId: sender } } : {}) },
  });

  it('reads the node reports a parent run received, from the node workflows that sent them', () => {
    const report = { node: 'a', done: ranges(0), failures: [{ message: '404', type: 'NonRetryable', ranges: ranges(1) }], stats: {} };
    const events = [
      signal(1, report, 'backfill/b/a'),
      signal(2, report),
      signal(3, report, 'someone-else'),
      signal(4, { node: 'a', done: 7, failures: [] }, 'backfill/b/a'),
      { eventTime: at(5), workflowExecutionSignaledEventAttributes: { signalName: 'pause' } },
    ];
    expect(reportedWork(events, decode, (node) => `backfill/b/${node}`)).toEqual([
      { atMs: T0 + 1000, node: 'a', done: report.done, failures: report.failures },
      { atMs: T0 + 2000, node: 'a', done: report.done, failures: report.failures },
    ]);
  });

  const plan = [{ id: 'a', partitions: { size: 10, key: (i: number) => `k${i}` } }];
  it('lists partitions that failed and were published later: the runs they failed in, with the last message, and the run that published them', () => {
    const runs = [
      [work('a', [0, 1], [['404', [2, 3, 4]]]), work('a', [5], [['timeout', [6]]])],
      [work('a', [2, 3], [['404 again', [4]]])],
      [work('a', [4, 6])],
    ];
    expect(fixedFailures(plan, runs).get('a')).toEqual([
      { message: '404', type: 'NonRetryable', failedInRuns: [1], publishedInRun: 2, partitions: 2, examples: ['k2', 'k3'] },
      { message: '404 again', type: 'NonRetryable', failedInRuns: [1, 2], publishedInRun: 3, partitions: 1, examples: ['k4'] },
      { message: 'timeout', type: 'NonRetryable', failedInRuns: [1], publishedInRun: 3, partitions: 1, examples: ['k6'] },
    ]);
  });

  it('leaves out failures still standing, partitions that never failed, other nodes, and a report naming partitions the node lacks', () => {
    const runs = [[work('a', [0], [['404', [1, 2]]]), work('b', [1, 2])], [work('a', [1]), work('a', [2, 11])]];
    expect(fixedFailures(plan, runs).get('a')).toEqual([{ message: '404', type: 'NonRetryable', failedInRuns: [1], publishedInRun: 2, partitions: 1, examples: ['k1'] }]);
    // Fixed in the run it failed in (retry-failed of a running backfill): run 1 both.
    expect(fixedFailures(plan, [[work('a', [], [['404', [3]]]), work('a', [3])]]).get('a')).toEqual([{ message: '404', type: 'NonRetryable', failedInRuns: [1], publishedInRun: 1, partitions: 1, examples: ['k3'] }]);
  });
});

describe('ledger figures', () => {
  it('percentiles by nearest rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(sorted, 50), percentile(sorted, 95), percentile(sorted, 100), percentile([7], 95), percentile([], 50)]).toEqual([50, 95, 100, 7, 0]);
    expect(durationStats([300, 100, 200])).toEqual({ p50Ms: 200, p95Ms: 300, maxMs: 300, totalMs: 600 });
    expect(durationStats([])).toBeNull();
  });

  it('groups messages, most partitions first, with a few examples', () => {
    const items = ['d', 'a', 'b', 'c', 'a'].map((partition) => ({ message: 'dup', partition }));
    expect(groupMessages([...items, { message: 'other', partition: 'z' }])).toEqual([
      { message: 'dup', partitions: 4, examples: ['a', 'b', 'c'] },
      { message: 'other', partitions: 1, examples: ['z'] },
    ]);
  });

  it('reads the warned checks of a ledger row', () => {
    expect(warningsOf(row('a'))).toEqual([]);
    expect(warningsOf(row('a', { warnings: ['few rows: 3 rows, expected at least 5'] }))).toEqual(['few rows: 3 rows, expected at least 5']);
  });

  it('compares published versions with the versions they replaced', () => {
    const previous = new Map([
      [versionKey('n', 'a', 1), row('a', { checksum: 'same', rowCount: 10 })],
      [versionKey('n', 'b', 1), row('b', { checksum: 'old', rowCount: 10 })],
    ]);
    const published = [
      row('a', { version: 2, previousVersion: 1, checksum: 'same', rowCount: 10 }),
      row('b', { version: 2, previousVersion: 1, checksum: 'new', rowCount: 13 }),
      row('c', { rowCount: 5 }),
    ];
    expect(nodeChanges(published, previous)).toEqual({ new: 1, changed: 1, unchanged: 1, rowsBefore: 20, rowsAfter: 23, rowsNew: 5 });
  });

  it("compares each node's versions with its own, when nodes share partition keys and version numbers", () => {
    const raw = row('2024-03-01', { node: 'orders_raw', checksum: 'raw', rowCount: 100 });
    const clean = row('2024-03-01', { node: 'orders_clean', checksum: 'clean', rowCount: 90 });
    // Filled in the order a report reads them: the last node's versions would win under a key without the node.
    const previous = new Map([raw, clean].map((r) => [versionKey(r.node, r.partition, r.version), r]));
    const rerun = (r: LedgerRow) => ({ ...r, version: 2, previousVersion: 1 });
    expect(nodeChanges([rerun(raw)], previous)).toEqual({ new: 0, changed: 0, unchanged: 1, rowsBefore: 100, rowsAfter: 100, rowsNew: 0 });
    expect(nodeChanges([rerun(clean)], previous)).toEqual({ new: 0, changed: 0, unchanged: 1, rowsBefore: 90, rowsAfter: 90, rowsNew: 0 });
  });

  it('counts retries, re-executions and failed checks of a node', () => {
    const rows = [
      row('a', { attempt: 2, durationMs: 100 }),
      row('b', { executions: 3, durationMs: 300 }),
      row('c', { status: 'failed_check', error: 'unique(order_id): 2 duplicates', rowCount: null, checksum: null }),
      row('d', { status: 'failed_check', error: 'unique(order_id): 2 duplicates', rowCount: null, checksum: null }),
    ];
    expect(ledgerFigures(rows, new Map())).toEqual({
      published: 2,
      durations: { p50Ms: 100, p95Ms: 300, maxMs: 300, totalMs: 400 },
      retries: { retried: 1, reExecuted: 1 },
      failedChecks: [{ message: 'unique(order_id): 2 duplicates', partitions: 2, examples: ['c', 'd'] }],
      warnedChecks: [],
      changes: { new: 2, changed: 0, unchanged: 0, rowsBefore: 0, rowsAfter: 0, rowsNew: 20 },
    });
  });
});

describe('buildTimeline', () => {
  const mark = (node: string, partition: string, startMs: number, endMs: number) => ({ node, partition, status: 'published' as const, startMs, endMs });

  it('puts overlapping partitions of a lane in sub-rows, reusing a sub-row once it is free', () => {
    const timeline = buildTimeline({
      nodes: ['a', 'b'],
      rows: [mark('a', '1', 0, 10), mark('a', '2', 5, 15), mark('a', '3', 10, 20), mark('b', '1', 0, 1)],
      startMs: 0,
      endMs: 20,
      paused: [],
      throttled: [],
    });
    expect(timeline.detail).toBe('partitions');
    expect(timeline.lanes).toEqual([
      { node: 'a', slots: 2 },
      { node: 'b', slots: 1 },
    ]);
    expect(timeline.marks.map((m) => [m.node, m.partition, m.slot])).toEqual([
      ['a', '1', 0],
      ['a', '2', 1],
      ['a', '3', 0],
      ['b', '1', 0],
    ]);
  });

  it(`shares at most ${MAX_SLOTS} sub-rows`, () => {
    const rows = Array.from({ length: 30 }, (_, i) => mark('a', String(i), 0, 10));
    const timeline = buildTimeline({ nodes: ['a'], rows, startMs: 0, endMs: 10, paused: [], throttled: [] });
    expect(timeline.lanes[0]!.slots).toBe(MAX_SLOTS);
    expect(Math.max(...timeline.marks.map((m) => m.slot))).toBe(MAX_SLOTS - 1);
  });

  it('the rate over time: partitions finished per second in bins of a second or more, empty bins included', () => {
    const ends = [500, 1500, 1600, 3999].map((endMs) => ({ endMs }));
    expect(rateOverTime(ends, { startMs: 0, endMs: 4000 }).map((r) => [r.startMs, r.endMs, r.perSecond])).toEqual([
      [0, 1000, 1],
      [1000, 2000, 2],
      [2000, 3000, 0],
      [3000, 4000, 1],
    ]);
    // A long run: at most RATE_BINS bins, each partition counted once.
    const many = Array.from({ length: 10_000 }, (_, i) => ({ endMs: i * 100 }));
    const rate = rateOverTime(many, { startMs: 0, endMs: 1_000_000 });
    expect(rate.length).toBeLessThanOrEqual(RATE_BINS);
    expect(rate.reduce((sum, r) => sum + Math.round((r.perSecond * (r.endMs - r.startMs)) / 1000), 0)).toBe(10_000);
    for (const r of rate.slice(0, -1)) expect(r.perSecond).toBeCloseTo(10, 0);
    // A finish past the span (a clock a little ahead) goes in the last bin.
    expect(rateOverTime([{ endMs: 5000 }], { startMs: 0, endMs: 2000 }).map((r) => r.perSecond)).toEqual([0, 1]);
  });

  it('bins 100,000 partitions: average running and finished per bin, every partition counted once', () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => mark(i % 2 ? 'a' : 'b', String(i), i * 10, i * 10 + 40));
    const timeline = buildTimeline({ nodes: ['a', 'b'], rows, startMs: 0, endMs: 1_000_040, paused: [], throttled: [] });
    expect(timeline).toMatchObject({ detail: 'bins', marks: [], binMs: Math.ceil(1_000_040 / 240) });
    expect(timeline.bins.length).toBeLessThanOrEqual(2 * 240);
    expect(timeline.bins.reduce((sum, b) => sum + b.finished, 0)).toBe(100_000);
    // Each node runs a 40 ms partition every 20 ms: two at a time, on average.
    const middle = timeline.bins.filter((b) => b.node === 'a').slice(10, 200);
    for (const bin of middle) expect(bin.busy).toBeCloseTo(2, 1);
  });
});

describe("gatherReport: the spec the backfill last ran with", () => {
  const base = { name: 'shop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' } } as const;
  const broken = resolveSpec({ ...base, nodes: [{ id: 'daily', sql: 'SELECT amount FROM orders_raw WHERE broken' }] });
  const fixed = resolveSpec({ ...base, nodes: [{ id: 'daily', sql: 'SELECT amount FROM orders_raw' }] });
  const started = (s: number, runId: string, input: unknown): HistoryEvent => ({ eventTime: at(s), workflowExecutionStartedEventAttributes: { firstExecutionRunId: runId, input: { payloads: [payload(input)] } } });
  const completed = (s: number, result: unknown = null): HistoryEvent => ({ eventTime: at(s), workflowExecutionCompletedEventAttributes: { result: { payloads: [payload(result)] } } });

  /** A client that knows these runs of `backfill/b1` (the last is the latest) and nothing else. */
  function clientOf(histories: Record<string, HistoryEvent[]>): BackfillClient {
    const runIds = Object.keys(histories);
    return {
      namespace: 'default',
      uiUrl: () => 'http://localhost:8233/x',
      describe: async () => ({ runId: runIds[runIds.length - 1], status: { name: 'COMPLETED' } }),
      progress: async () => { throw new Error('no progress in this test'); },
      client: {
        options: { loadedDataConverter: { payloadConverter: defaultPayloadConverter } },
        workflow: {
          list: ({ query }: { query: string }) => (async function* () {
            if (query.includes("'backfill/b1'")) for (const runId of runIds) yield { runId, startTime: new Date(runInfo(runId, histories[runId]!, decode).startMs) };
          })(),
          getHandle: (_id: string, runId: string) => ({ fetchHistory: async () => ({ events: histories[runId] ?? [] }) }),
        },
      },
    } as unknown as BackfillClient;
  }
  const warehouse = { location: '/tmp/w.db', ledger: async () => [], ledgerVersions: async () => [], rollbacks: async () => [], changesBy: async () => ({ changes: [], next: null }) } as unknown as Warehouse;

  it('after retry-failed --spec fixed.yaml (a new run of the same backfill run): the fix, not the first run\'s broken SQL', async () => {
    const client = clientOf({
      r1: [started(0, 'r1', { backfillId: 'b1', spec: broken, range: {} }), completed(60)],
      r2: [started(120, 'r2', { backfillId: 'b1', spec: fixed, range: {}, carry: { runKey: 'r1' } }), completed(180)],
    });
    const r = await gatherReport(client, warehouse, 'b1', { now: T0 + 200_000 });
    expect(r.backfill.runs).toBe(2);
    expect(r.spec.nodes[0]!.sql).toBe('SELECT amount FROM orders_raw');
    expect(renderMarkdown(r)).not.toContain('WHERE broken');
    expect(r.notes.join('\n')).toContain(`by the run started ${new Date(T0 + 120_000).toISOString()}`);
  });

  it('after resume --spec while it ran: the spec its run ended carrying', async () => {
    const client = clientOf({ r1: [started(0, 'r1', { backfillId: 'b1', spec: broken, range: {} }), completed(60, { state: 'completed', carry: { spec: fixed } })] });
    const r = await gatherReport(client, warehouse, 'b1', { now: T0 + 200_000 });
    expect(r.spec.nodes[0]!.sql).toBe('SELECT amount FROM orders_raw');
    expect(r.notes.join('\n')).toContain(`during the run started ${new Date(T0).toISOString()}`);
  });

  // Before, the report read the failures of the latest run's progress only: those a retry-failed fixed were gone.
  it('after retry-failed: lists the failures of the first run as failed there and published in the second, and counts them', async () => {
    const ranges = (...indexes: number[]) => RangeSet.of(...indexes.map((i): [number, number] => [i, i + 1])).toJSON();
    const signal = (s: number, done: number[], failed: number[]): HistoryEvent => ({
      eventTime: at(s),
      workflowExecutionSignaledEventAttributes: {
        signalName: 'nodeReport',
        externalWorkflowExecution: { workflowId: 'backfill/b1/daily' },
        input: { payloads: [payload({ node: 'daily', done: ranges(...done), failures: failed.length ? [{ message: 'upstream source returned 404', type: 'NonRetryable', ranges: ranges(...failed) }] : [], stats: {} })] },
      },
    });
    const client = clientOf({
      r1: [started(0, 'r1', { backfillId: 'b1', spec: broken, range: {} }), signal(10, [0], [1]), completed(60)],
      r2: [started(120, 'r2', { backfillId: 'b1', spec: fixed, range: {}, carry: { runKey: 'r1' } }), signal(130, [1], []), completed(180)],
    });
    const r = await gatherReport(client, warehouse, 'b1', { now: T0 + 200_000 });
    expect(r.nodes[0]!.fixedFailures).toEqual([{ message: 'upstream source returned 404', type: 'NonRetryable', failedInRuns: [1], publishedInRun: 2, partitions: 1, examples: ['2024-01-02'] }]);
    expect(r.totals.publishedAfterFailing).toBe(1);
    const md = renderMarkdown(r);
    expect(md).toContain('| daily | failed (NonRetryable) in run 1, published in run 2 | 1 | 2024-01-02 | upstream source returned 404 |');
    expect(md).toContain('1 after they failed (retry-failed)');
  });

  it('an unchanged spec: no note', async () => {
    const client = clientOf({ r1: [started(0, 'r1', { backfillId: 'b1', spec: fixed, range: {} }), completed(60)] });
    const r = await gatherReport(client, warehouse, 'b1', { now: T0 + 200_000 });
    expect(r.spec).toEqual(fixed);
    expect(r.notes.filter((n) => n.includes('spec was replaced'))).toEqual([]);
  });
});
