/** The pictures of a plan's graph (`plan --format dot|mermaid|svg`): what each says, laid out by Graphviz, and escaped. */
import { describe, expect, it } from 'vitest';
import { toDot } from '../../client/graph/dot.ts';
import { toMermaid } from '../../client/graph/mermaid.ts';
import { outcomeOf, planGraph, summaryGraph, type PlanGraph } from '../../client/graph/model.ts';
import { checkPictureFlags, drawGraph, graphFormat } from '../../client/graph/render.ts';
import { toSvg } from '../../client/graph/svg.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { expandPlan, planSummary } from '../../core/plan.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;

async function shop(): Promise<PlanGraph> {
  return summaryGraph(planSummary(expandPlan((await loadSpecFile(EXAMPLE)).spec)));
}

/** A graph with names that would break each format if they went in unescaped. */
const hostile: PlanGraph = planGraph({
  name: 'a "quoted" \\ name',
  nodes: [
    { id: 'end', grain: 'day', partitions: 1, transform: '<script>alert(1)</script> & "q"', dependsOn: [] },
    { id: 'graph', grain: 'day', partitions: 2, transform: 'a|b', dependsOn: [{ node: 'end', mapping: 'lag(-1..0)' }] },
  ],
});

describe('the graph model', () => {
  it('has a node per dataset and an edge per dependency, named by its mapping', async () => {
    const graph = await shop();
    expect(graph.nodes.map((n) => [n.id, n.grain, n.partitions])).toEqual([
      ['orders_raw', 'day', 366],
      ['orders_clean', 'day', 366],
      ['daily_revenue', 'day', 366],
      ['revenue_7d', 'day', 366],
      ['weekly_revenue', 'week', 52],
      ['monthly_active_customers', 'month', 12],
    ]);
    expect(graph.edges).toContainEqual({ from: 'daily_revenue', to: 'revenue_7d', mapping: 'lag(-6..0)' });
    expect(graph.edges).toContainEqual({ from: 'orders_clean', to: 'monthly_active_customers', mapping: 'window' });
    expect(graph.edges).toHaveLength(5);
  });

  it("colours a node by its partitions' outcome", () => {
    expect(outcomeOf({ partitions: 10, done: 10, failed: 0, blocked: 0 })).toBe('completed');
    expect(outcomeOf({ partitions: 10, done: 8, failed: 1, blocked: 1 })).toBe('failed');
    expect(outcomeOf({ partitions: 10, done: 9, failed: 0, blocked: 1 })).toBe('blocked');
    expect(outcomeOf({ partitions: 10, done: 4, failed: null, blocked: null })).toBe('incomplete');
  });
});

describe('DOT', () => {
  it('declares every node with its label and every edge with its mapping', async () => {
    const dot = toDot(await shop());
    expect(dot).toMatch(/^digraph "shop" \{\n {2}graph \[rankdir=LR/);
    expect(dot).toContain('"orders_raw" [id="node-orders_raw", class="dataset outcome-planned", label=<<B>orders_raw</B><BR/>day · 366 partitions<BR/>');
    expect(dot).toContain('"daily_revenue" -> "revenue_7d" [id="edge-daily_revenue-revenue_7d", class="dependency", label="lag(-6..0)"];');
    expect(dot.trimEnd().endsWith('}')).toBe(true);
  });

  it('escapes quotes in strings and markup in labels', () => {
    const dot = toDot(hostile);
    expect(dot).toContain('digraph "a \\"quoted\\" \\ name" {');
    expect(dot).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;');
    expect(dot).not.toContain('<script>');
  });
});

describe('Mermaid', () => {
  it('uses ids of its own (a dataset may be called end), labels in quotes, entity codes for syntax', () => {
    const text = toMermaid(hostile);
    expect(text).toBe(
      [
        'flowchart LR',
        '  n0["<b>end</b><br/>day · 1 partition<br/><small>#lt;script#gt;alert(1)#lt;/script#gt; #amp; #quot;q#quot;</small>"]',
        '  n1["<b>graph</b><br/>day · 2 partitions<br/><small>a#124;b</small>"]',
        '  n0 -->|lag(-1..0)| n1',
        '  classDef planned fill:#f6f8fa,stroke:#57606a,color:#1f2328',
        '  class n0,n1 planned',
        '',
      ].join('\n'),
    );
  });
});

describe('SVG', () => {
  it('is laid out by Graphviz: a box per dataset, left to right in dependency order', async () => {
    const svg = await toSvg(await shop());
    expect(svg.startsWith('<svg')).toBe(true);
    expect((svg.match(/<g id="node&#45;[a-z_0-9]+" class="node dataset/g) ?? []).length).toBe(6);
    expect((svg.match(/class="edge dependency"/g) ?? []).length).toBe(5);
    // The x of each box's label: every dataset right of what it depends on.
    const x = (id: string) => Number(new RegExp(`<g id="node&#45;${id}"[\\s\\S]*?<text[^>]* x="([\\d.-]+)"`).exec(svg)![1]);
    expect(x('orders_raw')).toBeLessThan(x('orders_clean'));
    expect(x('orders_clean')).toBeLessThan(x('daily_revenue'));
    expect(x('daily_revenue')).toBeLessThan(x('revenue_7d'));
    expect(svg).toContain('font-family="DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"');
  });

  it('escapes what the spec names', async () => {
    const svg = await toSvg(hostile);
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});

describe('plan --format', () => {
  it('takes svg, dot or mermaid, and names them for anything else', async () => {
    expect(graphFormat('mermaid')).toBe('mermaid');
    expect(() => graphFormat('png')).toThrow(/--format 'png' is not a picture format: use svg, dot, mermaid/);
    const graph = await shop();
    expect(await drawGraph(graph, 'dot')).toBe(toDot(graph));
    expect((await drawGraph(graph, 'svg')).trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('prints the picture only: flags that print something else are refused', () => {
    expect(() => checkPictureFlags({ format: 'svg' })).not.toThrow();
    expect(() => checkPictureFlags({ json: true, estimate: true })).not.toThrow();
    expect(() => checkPictureFlags({ format: 'dot', json: true, onlyChanged: true })).toThrow(/--format dot prints a picture of the graph only: leave out --json and --only-changed/);
  });
});
