/** What the Web UI shows of a backfill: summaries, static details and current details. */
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../core/audit.ts';
import { shellWord } from '../../core/shell-word.ts';
import { RECENT_ACTIONS, backfillCurrentDetails, backfillDetails, canaryDetails, markdownText, plainCell, recentActionsText, backfillSummary, describePartitions, nodeCurrentDetails, nodeDetails, nodeSummary, waitReasonText, type WaitReason } from '../../core/details.ts';
import { NodePartitions } from '../../core/partitions.ts';
import { expandPlan } from '../../core/plan.ts';
import type { Progress } from '../../core/protocol.ts';
import { parseRange, resolveSpec } from '../../core/spec.ts';

const spec = resolveSpec({
  name: 'shop',
  description: 'orders | revenue',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-03-01' },
  nodes: [
    { id: 'orders', transform: 'noop' },
    { id: 'weekly', transform: 'noop', partitions: { grain: 'week' }, dependsOn: ['orders'] },
    { id: 'rolling', sql: 'SELECT 1', dependsOn: [{ node: 'orders', mapping: { lag: { from: -6, to: 0 } } }] },
    { id: 'regions', transform: 'noop', partitions: { keys: ['eu'] } },
  ],
});
const plan = expandPlan(spec);

describe('static summaries and details', () => {
  it('describe partitions by count, grain and first and last key', () => {
    expect(describePartitions(plan.byId.get('orders')!.partitions)).toBe('60 days · 2024-01-01 … 2024-02-29');
    expect(describePartitions(plan.byId.get('regions')!.partitions)).toBe('1 keys · eu');
    expect(describePartitions(NodePartitions.of({ kind: 'time', grain: 'day', start: 0, end: 86_400_000 }, { from: 2 * 86_400_000 }))).toBe('no partitions in range');
  });

  it('the parent: datasets, partitions, and a table of every node with its mapping', () => {
    expect(backfillSummary(plan)).toBe('backfill shop · 4 datasets · 130 partitions');
    const details = backfillDetails(spec, plan, parseRange('2024-01-10', undefined));
    expect(details).toContain('**shop** — orders \\| revenue');
    expect(details).toContain('Range: 2024-01-10T00:00:00Z → …');
    expect(details).toContain('| weekly | week | 9 weeks · 2024-W01 … 2024-W09 | noop | orders (window) |');
    expect(details).toContain('| rolling | day | 60 days · 2024-01-01 … 2024-02-29 | sql | orders (lag -6..0) |');
    expect(details.split('\n').filter((l) => l.startsWith('| '))).toHaveLength(2 + 4); // header, rule, a row per dataset
  });

  it('a node: what it is, where it runs and how it is batched', () => {
    const node = plan.byId.get('rolling')!;
    expect(nodeSummary('shop-1', node.spec, node.partitions)).toBe('shop-1 · rolling · sql · 60 days · 2024-01-01 … 2024-02-29');
    const details = nodeDetails(node.spec, node.partitions);
    expect(details).toContain('**rolling**: sql (SQL), day partitions');
    expect(details).toContain('| 60 days · 2024-01-01 … 2024-02-29 | orders (lag -6..0) | backfill | auto | 10m |');
  });
});

describe('current details', () => {
  it('a node: counts, pace and why it waits', () => {
    const text = nodeCurrentDetails({ queued: 1200, running: 8, completed: 30, rate: 2.5, concurrency: 8, paused: false, throttles: 3, runs: 2, reason: 'concurrency', taskQueue: 'warehouse' });
    expect(text).toContain('| 1,200 | 8 | 30 | 2.5/s | 8 | 3 | 2 |');
    expect(text.split('\n')[0]).toContain('task queue warehouse; if none start, no worker polls it');
  });

  it('has a sentence for every reason', () => {
    const reasons: WaitReason[] = ['paused', 'throttled', 'rate', 'concurrency', 'upstream', 'slowed', 'measuring', null];
    const texts = reasons.map((r) => waitReasonText(r, 'q'));
    expect(new Set(texts).size).toBe(reasons.length);
    expect(texts[0]).toMatch(/paused/);
    expect(texts[4]).toMatch(/upstream/);
    expect(texts[6]).toMatch(/batchSize auto/);
    expect(texts[7]).toBe('running');
  });

  it('the parent: a headline with the ETA, a row per dataset and the last error', () => {
    const progress: Progress = {
      backfillId: 'b',
      name: 'shop',
      state: 'running',
      paused: true,
      rate: null,
      concurrency: null,
      total: 100,
      done: 40,
      running: 2,
      failed: 1,
      blocked: 3,
      pending: 54,
      throughput: 1,
      etaSeconds: 7200,
      runs: 1,
      nodes: [
        { id: 'orders', total: 100, done: 40, running: 2, failed: 1, blocked: 3, pending: 54, rate: null, concurrency: 4, throttles: 0, throughput: 1, etaSeconds: 61, failures: [{ message: 'bad | sql', type: 'SqlError', partitions: 1, examples: ['2024-01-02'] }] },
      ],
    };
    const text = backfillCurrentDetails(progress);
    expect(text.split('\n')[0]).toBe('**paused** · 40 of 100 partitions · backfill rate unlimited · ETA 2.0h  ');
    expect(text.split('\n')[1]).toBe('Last error: orders: bad \\| sql');
    expect(text).toContain('| orders | 40 of 100 | 2 | 1 | 3 | unlimited | 4 | 61s |');
    expect(backfillCurrentDetails({ ...progress, paused: false, etaSeconds: null, nodes: [] })).toMatch(/^\*\*running\*\* .* ETA —$/m);
  });

  it('the parent: a backfill that ended while paused is headlined by how it ended, not "paused"', () => {
    const node = { id: 'orders', total: 10, done: 10, running: 0, failed: 0, blocked: 0, pending: 0, rate: null, concurrency: 4, throttles: 0, throughput: 1, etaSeconds: 0, failures: [] };
    const ended: Progress = { backfillId: 'b', name: 'shop', state: 'completed', paused: true, rate: null, concurrency: null, total: 10, done: 10, running: 0, failed: 0, blocked: 0, pending: 0, throughput: 1, etaSeconds: 0, runs: 1, nodes: [node] };
    expect(backfillCurrentDetails(ended).split('\n')[0]).toMatch(/^\*\*completed\*\* · /);
  });

  it('the parent: a backfill that completed with failures names retry-failed after its last error, as status does', () => {
    const failures = [{ message: 'upstream source returned 404', type: 'NonRetryable', partitions: 2, examples: ['2024-01-02', '2024-01-03'] }];
    const node = { id: 'orders', total: 10, done: 8, running: 0, failed: 2, blocked: 0, pending: 0, rate: null, concurrency: 4, throttles: 0, throughput: 1, etaSeconds: null, failures };
    const ended: Progress = { backfillId: 'shop-1', name: 'shop', state: 'completed_with_failures', paused: false, rate: null, concurrency: null, total: 10, done: 8, running: 0, failed: 2, blocked: 0, pending: 0, throughput: 1, etaSeconds: null, runs: 1, nodes: [node] };
    const lines = backfillCurrentDetails(ended).split('\n');
    expect(lines[1]).toBe('Last error: orders: upstream source returned 404  ');
    expect(lines[2]).toBe("Next: fix the cause, then 'backfill retry-failed shop-1' runs the failed partitions and those they blocked \\(with --spec \\<file\\> when the fix is in the spec\\)");
    // An id chosen by whoever started it is quoted for the shell, then escaped for the markdown.
    expect(backfillCurrentDetails({ ...ended, backfillId: 'b; rm -rf ~' })).toContain(`retry-failed ${markdownText(shellWord('b; rm -rf ~'))}'`);
    // Any other state: no next step.
    expect(backfillCurrentDetails({ ...ended, state: 'completed', failed: 0, nodes: [{ ...node, failed: 0, failures: [] }] })).not.toContain('Next:');
  });

  const entry = (seq: number, over: Partial<AuditEntry>): AuditEntry => ({
    seq,
    at: Date.UTC(2024, 0, 2, 3, 4, seq, 250),
    action: 'set-rate',
    identity: 'alice@laptop',
    verified: false,
    reason: null,
    outcome: 'applied',
    details: {},
    ...over,
  });
  const actions: AuditEntry[] = [
    entry(1, { action: 'start', details: { partitions: 100 } }),
    entry(2, { action: 'set-rate', identity: 'alice@ops', reason: 'the API team asked for less', details: { rate: 10, previous: 20 } }),
    entry(3, { action: 'pause', identity: 'carol@ops' }),
    entry(4, { action: 'approve', identity: 'dana@example.com', verified: true, reason: 'reviewed', details: { planHash: 'sha256:0123456789abcdef0123' } }),
    entry(5, { action: 'set-rate', identity: 'bob@oncall', reason: 'incident 42 | [link](http://evil.example/x.png) <b>x</b>\nsecond line', details: { rate: 50, previous: 10, node: 'orders' } }),
  ];

  it('the parent: the newest operator actions after the datasets, newest first, with who, why and what changed', () => {
    const progress: Progress = {
      backfillId: 'shop-1', name: 'shop', state: 'running', paused: false, rate: 50, concurrency: null,
      total: 10, done: 1, running: 1, failed: 0, blocked: 0, pending: 8, throughput: null, etaSeconds: null, runs: 1, nodes: [],
      governance: {
        policy: { hash: null, path: null }, planHash: 'sha256:x', starter: { identity: 'alice@laptop', verified: false },
        approval: { needed: false, reasons: [], approvedBy: null, approvedAt: null }, holds: [], window: null,
        budgets: { retries: null, cost: null }, priority: { key: null, fairnessWeight: null }, estimate: null,
        lastAction: actions[4]!, recentActions: actions, actions: 12,
      },
    };
    const text = backfillCurrentDetails(progress);
    const lines = text.split('\n');
    // The progress stays on top; the actions follow the dataset table, as a table of their own.
    expect(lines[0]).toMatch(/^\*\*running\*\*/);
    const heading = lines.findIndex((l) => l.startsWith('**Recent actions**'));
    expect(heading).toBeGreaterThan(lines.findIndex((l) => l.startsWith('| dataset |')));
    expect(lines[heading]).toBe(`**Recent actions** (${RECENT_ACTIONS} of 12; backfill audit shop-1 lists them all)`);
    const rows = lines.slice(heading + 4);
    expect(rows).toHaveLength(RECENT_ACTIONS);
    expect(rows[0]).toBe(
      '| 2024-01-02 03:04:05Z | set-rate | bob@oncall \\(declared\\) | incident 42 \\| \\[link\\]\\(http://evil.example/x.png\\) \\<b\\>x\\</b\\> second line | rate 10/s → 50/s \\(node orders\\) |',
    );
    expect(rows[1]).toContain('| approve | dana@example.com \\(verified signature\\) | reviewed | approved plan sha256:0123456789ab… |');
    expect(rows[2]).toBe('| 2024-01-02 03:04:03Z | pause | carol@ops \\(declared\\) | — | — |');
    // Older actions are in `backfill audit`, not here.
    expect(text).not.toContain('the API team asked for less');
  });

  it('no governance, or no action yet: no actions table', () => {
    expect(recentActionsText('b', [], 0)).toEqual([]);
    expect(recentActionsText('b', actions, 5, 1)).toHaveLength(5);
  });

  it('text anyone wrote is one cell that shows as written: no markdown link, image, HTML or table break gets through', () => {
    expect(plainCell('![x](http://e/x.png) <img src=x> a|b\n\n# head')).toBe('\\!\\[x\\]\\(http://e/x.png\\) \\<img src=x\\> a\\|b \\# head');
    expect(plainCell('x'.repeat(200), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(plainCell('under_score*star*`code`')).toBe('under_score\\*star\\*\\`code\\`');
    expect(plainCell('_em_ and __strong__ x_')).toBe('\\_em\\_ and \\_\\_strong\\_\\_ x\\_');
  });

  it('the parent: what the policy holds it for, such as when the next run window opens', () => {
    const waiting: Progress = {
      backfillId: 'b', name: 'shop', state: 'waiting_for_window', paused: false, rate: null, concurrency: null, total: 10, done: 4, running: 0, failed: 0, blocked: 0, pending: 6,
      throughput: 0, etaSeconds: null, runs: 1, nodes: [],
      governance: {
        policy: { hash: null, path: null }, planHash: 'sha256:x', starter: { identity: 'alice@laptop', verified: false },
        approval: { needed: false, reasons: [], approvedBy: null, approvedAt: null },
        holds: [{ kind: 'window', reason: 'outside the run windows (paused): next window opens Fri 06:30 UTC, in 5 min' }],
        window: null, budgets: { retries: null, cost: null }, priority: { key: null, fairnessWeight: null }, estimate: null,
        lastAction: null, recentActions: [], actions: 0,
      },
    };
    // Markdown: the parentheses are escaped, and show as written.
    expect(backfillCurrentDetails(waiting).split('\n')[1]).toBe('Held: outside the run windows \\(paused\\): next window opens Fri 06:30 UTC, in 5 min');
  });
});

describe('values from specs, the server and callers in the Web UI\'s markdown', () => {
  const HOSTILE = ['[x](https://evil)', '![i](https://evil/p.png)', '<img src=x>', 'x\n# heading', '- item', '1. one', '===', '{workflowId}'];
  /** The markdown left once escaped characters are taken out: what a renderer would act on. */
  const active = (md: string) => md.replace(/\\[\s\S]/g, '');
  /** True when `md` holds a link, an image, HTML, a heading, a list, a setext underline or a Web UI template. */
  const live = (md: string) => /\]\(|!\[|<[a-z]|\{workflowId\}/i.test(active(md)) || md.split('\n').some((line) => /^(#|- |\d+\. |=+$)/.test(line));

  it('markdownText shows a value as written: punctuation escaped, line breaks folded, nothing starting a line', () => {
    expect(markdownText('[x](https://evil)')).toBe('\\[x\\]\\(https://evil\\)');
    expect(markdownText('![i](https://evil/p.png)')).toBe('\\!\\[i\\]\\(https://evil/p.png\\)');
    expect(markdownText('<img src=x>')).toBe('\\<img src=x\\>');
    expect(markdownText('x\n# heading')).toBe('x \\# heading');
    expect(markdownText('- item')).toBe('\\- item');
    expect(markdownText('12. one')).toBe('12\\. one');
    expect(markdownText('===')).toBe('\\===');
    expect(markdownText('{workflowId}')).toBe('\\{workflowId\\}');
    for (const value of HOSTILE) expect(live(markdownText(value)), markdownText(value)).toBe(false);
  });

  it('ordinary names and ids are written as they are', () => {
    for (const value of ['shop', 'daily_orders', 'shop-2024_01.v2', 'rolling', '2024-01-01', 'a1b2c3d4-e5f6']) expect(markdownText(value)).toBe(value);
    const orders = plan.byId.get('orders')!;
    const daily = { ...orders.spec, id: 'daily_orders', transform: 'my_module.run' };
    expect(nodeSummary('shop_2024-01.v2', daily, orders.partitions)).toBe('shop_2024-01.v2 · daily_orders · my_module.run · 60 days · 2024-01-01 … 2024-02-29');
    expect(nodeDetails({ ...daily, dependsOn: [{ node: 'raw_orders', mapping: 'identity' }] }, orders.partitions)).toContain('**daily_orders**: my_module.run, day partitions');
  });

  it("the summaries: the spec's name, the backfill id, a node's id and transform", () => {
    const orders = plan.byId.get('orders')!;
    for (const value of HOSTILE) {
      const summaries = [
        backfillSummary({ ...plan, name: value }),
        nodeSummary(value, orders.spec, orders.partitions),
        nodeSummary('b', { ...orders.spec, id: value, transform: value }, orders.partitions),
      ];
      for (const summary of summaries) {
        expect(live(summary), summary).toBe(false);
        expect(summary).toContain(markdownText(value));
      }
    }
  });

  it("the static details: a node's id and its upstream nodes' ids", () => {
    const rolling = plan.byId.get('rolling')!;
    for (const value of HOSTILE) {
      const node = { ...rolling.spec, id: value, dependsOn: [{ node: value, mapping: 'identity' as const }] };
      const parent = backfillDetails(spec, { ...plan, nodes: [{ ...rolling, id: value, spec: node }] }, {});
      const own = nodeDetails(node, rolling.partitions);
      for (const details of [parent, own]) {
        expect(live(details), details).toBe(false);
        expect(details).toContain(`${markdownText(value)} (identity)`);
      }
    }
  });

  it("the current details: a node's id, the backfill id in the canary's commands, a canary dataset", () => {
    for (const value of HOSTILE) {
      const node = { id: value, total: 10, done: 5, running: 1, failed: 0, blocked: 0, pending: 4, rate: null, concurrency: 4, throttles: 0, throughput: 1, etaSeconds: 4, failures: [] };
      const progress = { backfillId: 'b', name: 'shop', state: 'running', paused: false, rate: null, concurrency: null, total: 10, done: 5, running: 1, failed: 0, blocked: 0, pending: 4, throughput: 1, etaSeconds: 4, runs: 1, nodes: [node] } as Progress;
      const counts = { partitions: 1, rowsBefore: 1, rowsAfter: 1, added: 0, removed: 0, changed: 0 };
      const canary = { phase: 'awaiting' as const, pick: 'newest' as const, perNode: 1, partitions: 1, auto: null, decision: null, note: null, diff: { ...counts, nodes: [{ ...counts, node: value }] } };
      const texts = [backfillCurrentDetails(progress), canaryDetails(canary, value).join('\n')];
      for (const text of texts) {
        expect(live(text), text).toBe(false);
        expect(text).toContain(`| ${markdownText(value)} |`);
      }
      expect(texts[1]).toContain(`backfill approve ${markdownText(value)} --reason`);
    }
  });
});
