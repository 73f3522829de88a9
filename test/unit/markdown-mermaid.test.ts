/**
 * The Markdown report's Mermaid chart holds whatever a transform is called: its label text
 * (client/graph/mermaid.ts) stays on one line with entity codes for `, [, ], # and Mermaid's own
 * syntax, and the report fences it as it fences SQL (`codeBlock`), so a name cannot end the
 * ```mermaid block and put its own Markdown (a link, an image that loads from anywhere) in the report.
 */
import { describe, expect, it } from 'vitest';
import type { Report } from '../../client/report/model.ts';
import { renderMarkdown } from '../../client/report/markdown.ts';
import { toMermaid } from '../../client/graph/mermaid.ts';
import { buildTimeline } from '../../client/report/timeline.ts';
import { resolveSpec } from '../../core/spec.ts';

/** A transform's registered name (defineTransforms({ [name]: fn }) takes any string; the spec names it). */
const TRANSFORM = 'load\n```\n\n[Approve this backfill](https://evil.example/approve) ![](https://evil.example/pixel.png)\n\n```mermaid';

function report(): Report {
  const spec = resolveSpec({ name: 'shop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' }, nodes: [{ id: 'orders', transform: TRANSFORM }] });
  const T0 = Date.UTC(2025, 5, 1);
  return {
    reportVersion: 1,
    generatedAt: '2025-06-01T10:00:00.000Z',
    backfill: { id: 'shop-june', workflowId: 'backfill/shop-june', namespace: 'default', runKey: 'k', state: 'completed', paused: false, startedAt: new Date(T0).toISOString(), endedAt: new Date(T0 + 1000).toISOString(), runs: 1, uiUrl: 'http://localhost:8233/x' },
    spec,
    parameters: { from: null, to: null, rate: null, concurrency: null, onlyChanged: false, codeVersions: [], warehouse: '/tmp/w.db' },
    plan: { totalPartitions: 1, criticalPathLength: 1, maxWidth: 1, criticalPath: [], nodes: [{ id: 'orders', grain: 'day', partitions: 1, first: '2024-01-01', last: '2024-01-01', transform: TRANSFORM, dependsOn: [] }] },
    totals: { partitions: 1, done: 1, failed: 0, blocked: 0, skipped: 0, published: 1, retried: 0, publishedAfterFailing: 0, throttles: 0, failedChecks: 0 },
    nodes: [],
    staged: null,
    rolledBack: null,
    timeline: buildTimeline({ nodes: ['orders'], rows: [], startMs: T0, endMs: T0 + 1000, paused: [], throttled: [] }),
    actions: [],
    notes: [],
  };
}

describe('the Markdown report keeps the chart inside its fence', () => {
  it('a transform name cannot close the ```mermaid block', () => {
    const md = renderMarkdown(report());
    const chart = md.slice(md.indexOf('```mermaid'), md.indexOf('## Nodes'));
    const lines = chart.split('\n');
    const fences = lines.filter((line) => /^`{3,}/.test(line));
    expect(fences, chart).toEqual(['```mermaid', '```']);
    expect(lines.some((line) => line.startsWith('[Approve this backfill]('))).toBe(false);
  });

  it('plan --format mermaid: a label with a line break stays one node statement', () => {
    const chart = toMermaid({ name: 'shop', nodes: [{ id: 'orders', grain: 'day', partitions: 1, transform: 'a\nb' }], edges: [] });
    expect(chart.split('\n').filter((l) => l.startsWith('  n0['))).toHaveLength(1);
    expect(chart, chart).not.toMatch(/<small>a\nb<\/small>/);
  });

  it('plan --format mermaid: backticks, brackets, # and line breaks in a label become entity codes and spaces', () => {
    const chart = toMermaid({ name: 'shop', nodes: [{ id: 'orders', grain: 'day', partitions: 1, transform: TRANSFORM.replace('load', 'load #quot;') }], edges: [] });
    expect(chart.split('\n')[1]).toBe(
      '  n0["<b>orders</b><br/>day · 1 partition<br/><small>load #35;quot; #96;#96;#96;  #91;Approve this backfill#93;(https://evil.example/approve) !#91;#93;(https://evil.example/pixel.png)  #96;#96;#96;mermaid</small>"]',
    );
  });
});
