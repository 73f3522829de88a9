/** The audit report's renderers, from a hand-built report model. */
import { describe, expect, it } from 'vitest';
import { reportActions } from '../../client/report/actions.ts';
import { actionsTable } from '../../client/report/sections.ts';
import { UNKNOWN_IDENTITY } from '../../core/audit.ts';
import type { Report } from '../../client/report/model.ts';
import { formatOfPath, renderReport, reportFormat } from '../../client/report/render.ts';
import { escapeCell } from '../../client/report/markdown.ts';
import { buildTimeline } from '../../client/report/timeline.ts';
import { timelineSpec } from '../../client/report/vega.ts';
import type { AuditRecord } from '../../client/audit.ts';
import { resolveSpec } from '../../core/spec.ts';
import { BackfillError } from '../../core/errors.ts';

const T0 = Date.UTC(2025, 5, 1, 9, 0, 0);
const NODES = ['orders_raw', 'orders_clean', 'daily_revenue'];

function sample(overrides: { rows?: number } = {}): Report {
  const spec = resolveSpec({
    name: 'shop',
    description: 'orders <and> revenue',
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    nodes: [
      { id: 'orders_raw', transform: 'noop', params: { note: '<script>alert(1)</script>', ordersPerDay: 200 } },
      { id: 'orders_clean', sql: 'SELECT * FROM orders_raw WHERE a < 1', dependsOn: ['orders_raw'], checks: [{ type: 'unique', columns: ['order_id'] }] },
      { id: 'daily_revenue', sql: 'SELECT 1 AS n', dependsOn: ['orders_clean'] },
    ],
  });
  const count = overrides.rows ?? 10;
  const rows = NODES.flatMap((node, k) =>
    Array.from({ length: count }, (_, i) => ({
      node,
      partition: `2024-01-${String((i % 10) + 1).padStart(2, '0')}`,
      status: node === 'orders_clean' && i === 3 ? ('failed_check' as const) : ('published' as const),
      startMs: T0 + i * 1000 + k * 400,
      endMs: T0 + i * 1000 + k * 400 + 700,
    })),
  );
  const audit = (seq: number, atS: number, entry: Partial<AuditRecord>): AuditRecord => ({
    seq, at: T0 + atS * 1000, action: 'set-rate', identity: 'alice@laptop', verified: false, reason: null, outcome: 'applied', details: {}, workflowId: 'backfill/shop-june', runId: 'r1', ...entry,
  });
  const actions = reportActions([
    audit(1, 0, { action: 'start', reason: 'reload June', details: { partitions: 30 } }),
    audit(2, 3, { identity: 'alice@ops', reason: 'the orders API asked for less', details: { rate: 2, previous: 5 } }),
    audit(4, 7, { identity: 'bob@oncall', reason: 'incident <42> is over | back to 8', details: { rate: 8, previous: 2, node: 'orders_raw' } }),
    audit(3, 4, { action: 'pause', identity: 'carol@ops', reason: 'look at the failed check' }),
    audit(5, 8, { action: 'set-concurrency', identity: 'mallory@laptop', outcome: 'refused', details: { why: 'above the policy cap of 4' } }),
    audit(6, 9, { action: 'budget-pause', identity: 'policy', details: { why: 'the cost budget of 100 rows is spent' } }),
    audit(7, 10, { action: 'set-budget', identity: 'dana@example.com', verified: true, reason: 'approved by finance', details: { budget: 'cost', limit: 200, previous: 100 } }),
  ]);
  const timeline = buildTimeline({
    nodes: NODES,
    rows,
    startMs: T0,
    endMs: T0 + count * 1000 + 2000,
    paused: [{ startMs: T0 + 4000, endMs: T0 + 6500 }],
    throttled: [{ node: 'orders_raw', startMs: T0 + 2000, endMs: T0 + 2600, count: 2, recovered: true }],
    limitChanges: actions.filter((a) => a.limitChange).map((a) => ({ atMs: Date.parse(a.at), seq: a.seq, action: a.action, label: a.change })),
  });
  const node = (id: string, extra: Partial<Report['nodes'][number]> = {}): Report['nodes'][number] => ({
    id,
    grain: 'day',
    transform: id === 'orders_raw' ? 'noop' : 'sql',
    partitions: 10,
    done: 10,
    failed: 0,
    blocked: 0,
    skipped: 0,
    published: 10,
    durations: { p50Ms: 700, p95Ms: 900, maxMs: 1200, totalMs: 7400 },
    retries: { retried: 0, reExecuted: 0 },
    throttles: 0,
    failures: [],
    fixedFailures: [],
    failedChecks: [],
    warnedChecks: [],
    changes: { new: 10, changed: 0, unchanged: 0, rowsBefore: 0, rowsAfter: 0, rowsNew: 2000 },
    ...extra,
  });
  return {
    reportVersion: 1,
    generatedAt: '2025-06-01T10:00:00.000Z',
    backfill: {
      id: 'shop-june',
      workflowId: 'backfill/shop-june',
      namespace: 'default',
      runKey: 'run-1',
      state: 'completed_with_failures',
      paused: false,
      startedAt: new Date(T0).toISOString(),
      endedAt: new Date(T0 + 12_000).toISOString(),
      runs: 2,
      uiUrl: 'http://localhost:8233/namespaces/default/workflows/backfill%2Fshop-june',
    },
    spec,
    parameters: { from: '2024-01-01T00:00:00.000Z', to: null, rate: 5, concurrency: null, onlyChanged: false, codeVersions: ['backfill@0.1.0'], warehouse: '/tmp/warehouse.db' },
    plan: {
      totalPartitions: 30,
      criticalPathLength: 3,
      maxWidth: 10,
      criticalPath: NODES.map((n) => ({ node: n, partition: '2024-01-01' })),
      nodes: NODES.map((id, i) => ({ id, grain: 'day', partitions: 10, first: '2024-01-01', last: '2024-01-10', transform: 'sql', dependsOn: i === 0 ? [] : [{ node: NODES[i - 1]!, mapping: 'identity' }] })),
    },
    totals: { partitions: 30, done: 29, failed: 1, blocked: 1, skipped: 0, published: 29, retried: 2, publishedAfterFailing: 3, throttles: 2, failedChecks: 1 },
    nodes: [
      node('orders_raw', {
        throttles: 2,
        retries: { retried: 2, reExecuted: 1 },
        fixedFailures: [{ message: 'upstream source returned 404', type: 'ApplicationFailure', failedInRuns: [1], publishedInRun: 2, partitions: 3, examples: ['2024-01-02', '2024-01-05', '2024-01-07'] }], changes: { new: 0, changed: 3, unchanged: 7, rowsBefore: 2000, rowsAfter: 2100, rowsNew: 0 } }),
      node('orders_clean', {
        done: 9,
        failed: 1,
        published: 9,
        failedChecks: [{ message: 'unique(order_id): 2 duplicate rows | see <log>', partitions: 1, examples: ['2024-01-04'] }],
        warnedChecks: [{ message: 'row_count below 150', partitions: 4, examples: ['2024-01-01', '2024-01-02', '2024-01-03'] }],
      }),
      node('daily_revenue', { done: 9, blocked: 1, published: 9, durations: null }),
    ],
    staged: null,
    rolledBack: null,
    timeline,
    actions,
    notes: ['Throttles read from the histories of orders_raw.'],
  };
}

describe('report as HTML', () => {
  it('is one self-contained document: no scripts, stylesheets or images to load', async () => {
    const html = await renderReport(sample(), 'html');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|url\(/i);
    expect(html).toContain('<style>');
  });

  it("links the backfill's page in the Web UI only when the command line knows the Web UI (no guessed 8233 link)", async () => {
    const known = sample();
    expect(await renderReport(known, 'html')).toContain('<a href="http://localhost:8233/namespaces/default/workflows/backfill%2Fshop-june">Temporal Web UI</a>');
    expect(await renderReport(known, 'md')).toContain('[Temporal Web UI](http://localhost:8233/namespaces/default/workflows/backfill%2Fshop-june)');
    const unknown = { ...known, backfill: { ...known.backfill, uiUrl: null } };
    expect(await renderReport(unknown, 'html')).not.toContain('Temporal Web UI');
    expect(await renderReport(unknown, 'md')).not.toContain('Temporal Web UI');
  });

  it('draws the timeline as inline SVG: one lane per node, every partition, the paused and throttled spans', async () => {
    const html = await renderReport(sample(), 'html');
    const at = html.indexOf('<svg', html.indexOf('id="timeline"'));
    const svg = html.slice(at, html.indexOf('</svg>', at) + 6);
    expect(svg.length).toBeGreaterThan(1000);
    const group = (name: string) => new RegExp(`<g class="mark-[a-z]+ role-mark ${name}"[^>]*>(.*?)</g>`, 's').exec(svg)?.[1] ?? '';
    const count = (name: string) => (group(name).match(/<path/g) ?? []).length;
    expect(count('lanes')).toBe(3);
    expect(count('partitions')).toBe(30);
    expect(count('paused')).toBe(1);
    expect(count('throttled')).toBe(1);
    for (const node of NODES) expect(svg).toContain(`>${node}</text>`);
    expect(svg).toContain('aria-label="orders_clean 2024-01-04 (failed_check)"');
  });

  it('colours a backfill the server ended (terminated, timed out) red, as a failed one', async () => {
    const rule = (html: string, state: string) => html.match(new RegExp(`[^}]*\\.state-${state}\\b[^{]*\\{([^}]*)\\}`))?.[1];
    const failed = await renderReport({ ...sample(), backfill: { ...sample().backfill, state: 'failed' } }, 'html');
    expect(rule(failed, 'failed')).toContain('#d1242f');
    for (const state of ['terminated', 'timed_out'] as const) {
      const html = await renderReport({ ...sample(), backfill: { ...sample().backfill, state } }, 'html');
      expect(html).toContain(`class="state-${state}"`);
      expect(rule(html, state)).toBe(rule(failed, 'failed'));
    }
  });

  // Before, a rolled-back backfill's report read as if its versions were the data.
  it('says what a rollback restored and how many of its versions are still published, in every format', async () => {
    const rolled = { ...sample(), rolledBack: { partitions: 78, lastAt: '2025-06-01T09:30:00.000Z', stillPublished: 69 } };
    for (const format of ['md', 'html'] as const) {
      const text = await renderReport(rolled, format);
      expect(text, format).toContain('rolled back');
      expect(text, format).toContain('78 partitions put back as they were before it (last 2025-06-01 09:30:00Z) · 69 of its versions still published');
    }
    expect(await renderReport(sample(), 'md')).not.toContain('rolled back');
  });

  it('has every section, with figures formatted and text escaped', async () => {
    const html = await renderReport(sample(), 'html');
    for (const heading of ['Timeline', 'Graph', 'Nodes', 'What changed against the previous versions', 'Failures and checks', 'Plan', 'Spec and parameters', 'Notes']) {
      expect(html).toContain(`<h2>${heading}</h2>`);
    }
    expect(html).toContain('class="state-completed_with_failures"');
    expect(html).toContain('<dt>range</dt><dd>2024-01-01 → the spec&#39;s end (end exclusive)</dd>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('orders &lt;and&gt; revenue');
    expect(html).toMatch(/<td>orders_raw<\/td><td>day<\/td><td class="num">10<\/td>.*<td class="num">700ms<\/td><td class="num">900ms<\/td><td class="num">1.2s<\/td><td class="num">7.4s<\/td><td class="num">2<\/td><td class="num">1<\/td><td class="num">2<\/td>/);
    expect(html).toMatch(/<td>orders_raw<\/td><td class="num">10<\/td><td class="num">0<\/td><td class="num">3<\/td><td class="num">7<\/td><td class="num">2,000<\/td><td class="num">2,100<\/td><td class="num">\+100<\/td>/);
    expect(html).toContain('<td>check failed</td><td class="num">1</td><td>2024-01-04</td><td>unique(order_id): 2 duplicate rows | see &lt;log&gt;</td>');
    expect(html).toContain('<td>check warned</td><td class="num">4</td><td>2024-01-01, 2024-01-02, 2024-01-03 and 1 more</td>');
    // A failure a retry-failed fixed stays in the report: where it failed, with what, and which run published the partitions.
    expect(html).toContain('<td>orders_raw</td><td>failed (ApplicationFailure) in run 1, published in run 2</td><td class="num">3</td><td>2024-01-02, 2024-01-05, 2024-01-07</td><td>upstream source returned 404</td>');
    expect(html).toContain('<dd>29 versions · 2 after a retry · 3 after they failed (retry-failed) · 1 failed checks · throttled 2 times</dd>');
    // A running backfill's two counts are read apart: said, since they differ (14 done beside 16 versions).
    const running = sample();
    running.backfill.endedAt = null;
    expect(await renderReport(running, 'md')).toContain('29 versions · 2 after a retry · 3 after they failed (retry-failed) · 1 failed checks · throttled 2 times (still running: read from the warehouse a moment after the partitions above, so it may count more)');
    expect(html).toMatch(/<th class="num">failed, then published<\/th>.*<td>orders_raw<\/td><td>day<\/td><td class="num">10<\/td><td class="num">10<\/td><td class="num">0<\/td><td class="num">0<\/td><td class="num">3<\/td>/s);
    expect(html).toContain('Critical path: 3 partitions: orders_raw 2024-01-01 → orders_clean 2024-01-01 → daily_revenue 2024-01-01');
    expect(html).toContain('<pre>SELECT * FROM orders_raw WHERE a &lt; 1</pre>');
    expect(html).toContain('<td>paused</td><td>all</td><td>2025-06-01 09:00:04Z</td><td>2025-06-01 09:00:06Z</td><td>2.5s</td><td>–</td>');
    expect(html).toContain('<td>throttled: pace reduced until back</td><td>orders_raw</td><td>2025-06-01 09:00:02Z</td><td>2025-06-01 09:00:02Z</td><td>600ms</td><td>2</td>');
  });

  it('lists every operator action with who, whether a signature proved it, why and what changed; and marks the limit changes on the timeline', async () => {
    const report = sample();
    // In time order, whatever order the histories gave them in.
    expect(report.actions.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(report.actions.filter((a) => a.limitChange).map((a) => a.seq)).toEqual([2, 4, 7]);
    const html = await renderReport(report, 'html');
    expect(html).toContain('<h2>Operator actions</h2>');
    const table = html.slice(html.indexOf('<table id="actions">'), html.indexOf('</table>', html.indexOf('<table id="actions">')));
    expect((table.match(/<tr>/g) ?? []).length).toBe(1 + 7);
    expect(table).toContain('<th class="num">#</th><th>when</th><th>action</th><th>who</th><th>identity</th><th>why</th><th>what changed</th>');
    expect(table).toContain('<td class="num">2</td><td>2025-06-01 09:00:03Z</td><td>set-rate</td><td>alice@ops</td><td>declared by the client</td><td>the orders API asked for less</td><td>rate 5/s → 2/s</td>');
    expect(table).toContain('<td>set-rate</td><td>bob@oncall</td><td>declared by the client</td><td>incident &lt;42&gt; is over | back to 8</td><td>rate 2/s → 8/s (node orders_raw)</td>');
    expect(table).toContain('<td>set-concurrency (refused)</td><td>mallory@laptop</td><td>declared by the client</td><td>–</td><td>refused: above the policy cap of 4</td>');
    expect(table).toContain('<td>budget-pause</td><td>policy</td><td>the policy itself</td>');
    expect(table).toContain('<td>set-budget</td><td>dana@example.com</td><td>verified signature</td><td>approved by finance</td><td>cost budget 100 → 200</td>');
    expect(html).not.toContain('<42>');
    const at = html.indexOf('<svg', html.indexOf('id="timeline"'));
    const svg = html.slice(at, html.indexOf('</svg>', at) + 6);
    const group = (name: string) => new RegExp(`<g class="mark-[a-z]+ role-mark ${name}"[^>]*>(.*?)</g>`, 's').exec(svg)?.[1] ?? '';
    expect((group('limit-changes').match(/<(path|line)/g) ?? []).length).toBe(3);
    expect(group('limit-changes')).toContain('aria-label="limit change #4: rate 2/s → 8/s (node orders_raw)"');
    expect(group('limit-change-labels')).toContain('>#2 rate 5/s → 2/s</text>');
    expect(svg).toContain('>limit change</text>');
    expect(html).toContain('<dd>rate 5/s · concurrency per node at the start · changed 3 times while it ran (see operator actions)</dd>');
    // The rate over time under it, on the same time axis, with the same limit changes.
    const rateAt = html.indexOf('<svg', html.indexOf('id="rate"'));
    const rateSvg = html.slice(rateAt, html.indexOf('</svg>', rateAt) + 6);
    const rateGroup = (name: string) => new RegExp(`<g class="mark-[a-z]+ role-mark ${name}"[^>]*>(.*?)</g>`, 's').exec(rateSvg)?.[1] ?? '';
    expect(rateGroup('rate')).toMatch(/<path[^>]*d="M/);
    expect((rateGroup('rate-limit-changes').match(/<(path|line)/g) ?? []).length).toBe(3);
    expect(rateSvg).toContain('>partitions/s</text>');
    expect(html).toMatch(/Rate: [\d.,]+ partitions\/s at its peak \(from \d\d:\d\d:\d\d UTC\), [\d.,]+\/s on average\./);
  });

  it('marks a new run given limits of its own (resume, retry-failed --rate) as a limit change, and says what it set', () => {
    const run = (seq: number, action: AuditRecord['action'], details: AuditRecord['details']): AuditRecord => ({
      seq, at: T0 + seq * 1000, action, identity: 'alice@laptop', verified: false, reason: null, outcome: 'applied', details, workflowId: 'backfill/shop-june', runId: `r${seq}`,
    });
    const marked = reportActions([
      run(8, 'resume', { resumed: true, partitions: 147, rate: 20 }),
      run(9, 'retry-failed', { resumed: true, partitions: 147, concurrency: 2 }),
      run(10, 'resume', { resumed: true, partitions: 147 }),
    ]);
    // Numbered over the trail it is given, in time order.
    expect(marked.map((a) => [a.seq, a.limitChange])).toEqual([[1, true], [2, true], [3, false]]);
    expect(marked[0]!.change).toBe("resumed: a new run over the backfill's 147 partitions (those published already skipped), rate 20/s");
  });

  it('a backfill without limit changes has no limit marks nor their legend', async () => {
    const report = sample();
    report.actions = report.actions.filter((a) => !a.limitChange);
    report.timeline.limitChanges = [];
    const html = await renderReport(report, 'html');
    expect(html).not.toContain('>limit change</text>');
    expect(html).toContain('<dd>rate 5/s · concurrency per node at the start</dd>');
  });

  it('draws the graph of datasets laid out by Graphviz, each coloured by how it ended, with a legend', async () => {
    const report = sample();
    report.plan.nodes[0]!.transform = '<script>alert(2)</script>';
    const html = await renderReport(report, 'html');
    const at = html.indexOf('<svg', html.indexOf('id="graph"'));
    const svg = html.slice(at, html.indexOf('</svg>', at) + 6);
    const outcome = (id: string) => new RegExp(`<g id="node&#45;${id}" class="node dataset outcome&#45;([a-z]+)">`).exec(svg)?.[1];
    expect(outcome('orders_raw')).toBe('completed');
    expect(outcome('orders_clean')).toBe('failed');
    expect(outcome('daily_revenue')).toBe('blocked');
    expect((svg.match(/class="edge dependency"/g) ?? []).length).toBe(2);
    expect(svg).toContain('9/10 done · 1 failed');
    expect(svg).toContain('&lt;script&gt;alert(2)&lt;/script&gt;');
    expect(html).not.toContain('<script>alert');
    expect(html).toMatch(/<p class="legend"><span><i style="background:#dafbe1;border-color:#1a7f37"><\/i>every partition done<\/span><span>.*some partitions failed.*some wait on a failed partition<\/span><\/p>/);
  });

  it('draws bins instead of partitions when there are many', async () => {
    const report = sample({ rows: 1200 });
    expect(report.timeline.detail).toBe('bins');
    const html = await renderReport(report, 'html');
    expect(html).toContain('role-mark bins');
    expect(html).not.toContain('role-mark partitions');
    expect(html).toContain('partitions running (average)');
  });

  // Before, a backfill of 38.5 s said its bins (161 ms) were 0s long.
  it('says how long a time bin under a second is', async () => {
    const rows = NODES.map((node, i) => ({ node, partition: '2024-01-01', status: 'published' as const, startMs: T0 + i * 10_000, endMs: T0 + i * 10_000 + 5 }));
    const report = { ...sample(), timeline: buildTimeline({ nodes: NODES, rows, startMs: T0, endMs: T0 + 38_500, paused: [], throttled: [], maxMarks: 1 }) };
    expect(report.timeline.binMs).toBe(161);
    const html = await renderReport(report, 'html');
    expect(html).toContain('(29 partitions in time bins of 161ms, shaded by how many ran at once)');
    expect(html).toContain('in time bins of one second;');
    expect(await renderReport(report, 'md')).toContain('29 partitions over 3 nodes, in time bins of 161ms.');
  });
});

describe('report as Markdown', () => {
  it('has the same tables, aligned and escaped', async () => {
    const md = await renderReport(sample(), 'md');
    expect(md).toMatch(/^# Backfill shop-june\n/);
    expect(md).toContain('| node | grain | partitions | done | failed | blocked | failed, then published | p50 | p95 | max | total time | retried | ran twice | throttled |\n| --- | --- | ---: | ---: |');
    expect(md).toContain('| orders_raw | failed (ApplicationFailure) in run 1, published in run 2 | 3 | 2024-01-02, 2024-01-05, 2024-01-07 | upstream source returned 404 |');
    expect(md).toContain('| orders_clean | check failed | 1 | 2024-01-04 | unique(order_id): 2 duplicate rows \\| see \\<log\\> |');
    expect(md).toContain('| paused | all | 2025-06-01 09:00:04Z |');
    expect(md).toContain('```sql\nSELECT * FROM orders_raw WHERE a < 1\n```');
    expect(md).toContain('- Throttles read from the histories of orders_raw.');
    expect(md).toContain('```mermaid\nflowchart LR\n  n0["<b>orders_raw</b><br/>day · 10 partitions<br/><small>sql</small><br/><small>10/10 done</small>"]');
    expect(md).toContain('  class n1 failed\n');
    expect(md).toContain('## Operator actions');
    expect(md).toContain('| 4 | 2025-06-01 09:00:07Z | set-rate | bob@oncall | declared by the client | incident \\<42\\> is over \\| back to 8 | rate 2/s → 8/s (node orders_raw) |');
  });

  it('keeps a cell on one line', () => {
    expect(escapeCell('a|b\nc [x](y) `z`')).toBe('a\\|b c \\[x\\](y) \\`z\\`');
    // A lone carriage return ends a line in CommonMark too: a message could start a heading.
    expect(escapeCell('boom\r# Approved: publish it')).toBe('boom # Approved: publish it');
  });

  it("blanks the control characters of an operator's reason and identity and of SQL: read in a terminal, the report acts on nothing", async () => {
    const report = sample();
    const osc8 = '\u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007';
    const actions = report.actions.map((a, i) => (i === 0 ? { ...a, reason: `reload\u001b[2J June ${osc8}`, identity: 'eve\u001b[1A\u202e@ops' } : a));
    const nodes = report.spec.nodes.map((n) => (n.sql !== undefined ? { ...n, sql: `SELECT 1 AS n\n-- \u001b[2J\u009b31m` } : n));
    const md = await renderReport({ ...report, actions, spec: { ...report.spec, nodes } }, 'md');
    expect(md).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(md).toContain('| eve \\[1A @ops | declared by the client | reload \\[2J June  \\]8;;https://evil.example click \\]8;;  |');
    expect(md).toContain('```sql\nSELECT 1 AS n\n--  [2J 31m\n```');
  });

  it('blanks them in the HTML report too: sent to stdout, or cat, it reaches a terminal as well', async () => {
    const report = sample();
    const actions = report.actions.map((a, i) => (i === 0 ? { ...a, reason: 'reload\u001b[2J June \u009b31m', identity: 'eve\u001b[1A\u202e@ops' } : a));
    const nodes = report.spec.nodes.map((n) => (n.sql !== undefined ? { ...n, sql: 'SELECT 1 AS n\n-- \u001b]8;;https://evil.example\u0007x' } : n));
    const html = await renderReport({ ...report, actions, spec: { ...report.spec, nodes } }, 'html');
    expect(html).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(html).toContain('reload [2J June  31m');
    expect(html).toContain('eve [1A @ops');
  });

  it("keeps a node's SQL in its code block, whatever backticks it holds", async () => {
    const sql = 'SELECT 1 AS n /*\n```\n## Approved by the data council\n[here](https://evil.example)\n```sql\n*/';
    const report = sample();
    const md = await renderReport({ ...report, spec: { ...report.spec, nodes: [{ ...report.spec.nodes[0]!, sql }] } }, 'md');
    // CommonMark: a block opened by N backticks closes at the first line of N or more backticks alone.
    const lines = md.split('\n');
    const open = lines.findIndex((l) => /^`{3,}sql$/.test(l));
    const fence = lines[open]!.replace('sql', '');
    expect(fence.length).toBe(4);
    const close = lines.findIndex((l, i) => i > open && new RegExp(`^${fence}\`*\\s*$`).test(l));
    expect(lines.slice(open + 1, close).join('\n')).toBe(sql);
  });
});

/** The sample, started with --stage: orders_clean compared by its key, daily_revenue by whole rows. */
function stagedSample(phase: NonNullable<Report['staged']>['phase']): Report {
  const report = sample();
  const counts = { rowsBefore: 2000, rowsAfter: 2010, added: 12, removed: 2, changed: 40 };
  const nodes = [
    { node: 'orders_clean', key: ['order_id'], partitions: 10, ...counts, columns: [{ column: 'amount', before: { sum: 1000.5, min: 1, max: 9 }, after: { sum: 1100, min: 0.5, max: 9 } }] },
    { node: 'daily_revenue', key: null, partitions: 10, rowsBefore: 10, rowsAfter: 10, added: 3, removed: 3, changed: 0, columns: [] },
  ];
  const summary = phase === 'discarded' ? { partitions: 0, rowsBefore: 0, rowsAfter: 0, added: 0, removed: 0, changed: 0, nodes: [] } : { partitions: 20, rowsBefore: 2010, rowsAfter: 2020, added: 15, removed: 5, changed: 40, nodes };
  return { ...report, staged: { phase, summary } };
}

describe('report of a staged backfill', () => {
  it('has a section with the diff per node and the numeric columns, saying what it compares', async () => {
    const html = await renderReport(stagedSample('staged'), 'html');
    expect(html).toContain('<h2>Staged versions</h2>');
    expect(html).toMatch(/id="staged-phase">Staged, not published: what &#39;backfill publish shop-june&#39; would change against the versions published now/);
    expect(html).toContain('<td>orders_clean</td><td class="num">10</td><td class="num">2,000</td><td class="num">2,010</td><td class="num">12</td><td class="num">2</td><td class="num">40</td><td class="num">2.7%</td><td>order_id</td>');
    expect(html).toContain('<td>daily_revenue</td><td class="num">10</td><td class="num">10</td><td class="num">10</td><td class="num">3</td><td class="num">3</td><td class="num">0</td><td class="num">60%</td><td>whole rows</td>');
    expect(html).toContain('<td>orders_clean</td><td>amount</td><td class="num">1,000.5</td><td class="num">1,100</td><td class="num">+99.5</td><td class="num">-0.5</td><td class="num">0</td>');
    const md = await renderReport(stagedSample('staged'), 'md');
    expect(md).toContain('## Staged versions');
    expect(md).toContain('| orders_clean | 10 | 2,000 | 2,010 | 12 | 2 | 40 | 2.7% | order_id |');
    expect(md).toContain('### Numeric columns');
  });

  it('says what the publish changed once published, and that nothing was published once discarded', async () => {
    expect(await renderReport(stagedSample('published'), 'html')).toMatch(/Published from staging: what the publish changed, each version against the version it replaced/);
    const discarded = await renderReport(stagedSample('discarded'), 'html');
    expect(discarded).toContain('The staged versions were discarded: nothing of this backfill was published.');
    expect(discarded).not.toContain('id="staged-diff"');
    expect(await renderReport(stagedSample('discarded'), 'md')).toContain('The staged versions were discarded');
  });

  it('has no such section for a backfill that was not staged', async () => {
    expect(await renderReport(sample(), 'html')).not.toContain('Staged versions');
    expect(await renderReport(sample(), 'md')).not.toContain('Staged versions');
  });
});

describe('report as JSON', () => {
  it('is the report model itself', async () => {
    const report = sample();
    expect(JSON.parse(await renderReport(report, 'json'))).toEqual(JSON.parse(JSON.stringify(report)));
  });
});

describe('report formats', () => {
  it('come from --format or the output file name, and a bad one names the choices', () => {
    expect(reportFormat('md')).toBe('md');
    expect(() => reportFormat('pdf')).toThrow(/--format 'pdf' is not a report format: use html, json, md/);
    expect(formatOfPath('out/Report.HTML')).toBe('html');
    expect(formatOfPath('r.json')).toBe('json');
    expect(formatOfPath('r.markdown')).toBe('md');
    expect(formatOfPath('report')).toBeUndefined();
  });
});

describe('timeline spec', () => {
  it('is plain JSON Vega parses (no functions), with a lane per node', () => {
    const spec = timelineSpec(sample().timeline);
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
    expect(spec.scales?.find((s) => s.name === 'lane')).toMatchObject({ type: 'band', domain: NODES });
  });
});

describe('backfill report --output -', () => {
  it('refuses --json, which would print where a report written to stdout went, before it asks anything of the server', async () => {
    const { reportCommand } = await import('../../client/commands/report.ts');
    const refused = await reportCommand()
      .exitOverride()
      .parseAsync(['shop-2024', '--output', '-', '--json'], { from: 'user' })
      .then(() => null, (error: unknown) => error);
    expect(refused).toBeInstanceOf(BackfillError);
    expect(refused).toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('--format json --output -') });
  });
});

describe('the report\'s operator actions', () => {
  it('are numbered over the whole backfill in time order, as audit numbers them: a rollback\'s entries do not count from 1 again', () => {
    const entry = (seq: number, at: number, action: AuditRecord['action'], workflowId: string): AuditRecord => ({
      seq, at, action, identity: 'ops@vm', verified: false, reason: 'r', outcome: 'applied', details: {}, workflowId, runId: 'r1',
    });
    const actions = reportActions([entry(1, 10, 'start', 'backfill/b'), entry(2, 20, 'publish', 'backfill/b'), entry(1, 30, 'rollback', 'backfill/b/rollback')]);
    expect(actions.map((a) => [a.seq, a.action])).toEqual([[1, 'start'], [2, 'publish'], [3, 'rollback']]);
  });
});

describe("the report's operator actions, where the recorded identity would mislead", () => {
  const record = (seq: number, fields: Partial<AuditRecord>): AuditRecord => ({
    seq, at: T0 + seq * 1000, action: 'start', identity: 'alice@ops', verified: false, reason: null, outcome: 'applied', details: {}, workflowId: 'backfill/c', runId: 'r1', ...fields,
  });
  const stopped = '2 partitions of the canary failed (first: agg: boom); nothing beyond the canary was written';
  const rows = actionsTable({
    ...sample(),
    actions: reportActions([
      record(1, { details: { partitions: 30 } }),
      record(2, { action: 'discard', identity: 'policy', details: { canary: true, stopped } }),
      record(3, { action: 'resume', identity: UNKNOWN_IDENTITY, details: { paused: false, previous: false } }),
      record(4, { action: 'publish', identity: 'bob@ops', outcome: 'failed', details: { why: 'dataset agg is leased to run r9', attempts: 1, failureType: 'StaleRun' } }),
    ]),
  }).rows;

  it("puts a failed canary down to its own partitions and who started its run, not to the policy (who, identity columns)", () => {
    expect(rows[1]!.slice(2, 5)).toEqual(['discard', "the canary's own failed partitions, in the run alice@ops (declared) started", 'no one decided: the canary failed']);
  });

  it('says how to name a sender that named no one, and marks a failed publish as failed', () => {
    expect(rows[2]![3]).toMatch(/^unknown: the sender named no one/);
    expect(rows[3]!.slice(2, 4)).toEqual(['publish (failed)', 'bob@ops']);
    expect(rows[3]![6]).toMatch(/^the publish failed after 1 attempt \(StaleRun\): dataset agg is leased to run r9; nothing was published/);
  });
});
