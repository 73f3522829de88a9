/**
 * The graph picture (plan --format svg|dot, the HTML report's graph) shows names as written.
 * Graphviz expands its escapes \N (the node's name), \G (the graph's name), \L, \n ... in labels,
 * HTML-like ones too, and reads \\ there as one backslash: `html()` in client/graph/dot.ts
 * doubles backslashes. In a quoted id it takes only \" as an escape and keeps \\ as two: `quoted()`
 * escapes quotes only, and ends an odd run of backslashes before a quote with a space.
 */
import { describe, expect, it } from 'vitest';
import { toSvg } from '../../client/graph/svg.ts';

const texts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
const title = (svg: string) => /<title>([^<]*)<\/title>/.exec(svg)![1];

describe('the graph picture shows names as written', () => {
  it("a transform's backslash escapes are drawn as text, not expanded by Graphviz", async () => {
    const svg = await toSvg({ name: 'shop', nodes: [{ id: 'orders', grain: 'day', partitions: 1, transform: 'load\\G' }], edges: [] });
    expect(texts(svg)).toContain('load\\G');
  });

  it('backslashes in a label, alone, doubled or last, are drawn as they are', async () => {
    const transform = 'a\\\\N \\n b\\';
    const svg = await toSvg({ name: 'shop', nodes: [{ id: 'orders', grain: 'day', partitions: 1, transform }], edges: [] });
    expect(texts(svg)).toContain(transform);
  });

  it("the spec's name in the SVG title keeps its backslash single", async () => {
    const svg = await toSvg({ name: 'a\\b', nodes: [{ id: 'orders', grain: 'day', partitions: 1, transform: 'sql' }], edges: [] });
    expect(svg).toContain('<title>a\\b</title>');
  });

  it("a spec's name ending in a backslash, or with one before a quote, does not take the quote", async () => {
    const names = ['a\\', 'a\\"b', 'a\\\\"b', 'a\\\\'];
    const titles = await Promise.all(names.map(async (name) => title(await toSvg({ name, nodes: [{ id: 'orders', grain: 'day', partitions: 1, transform: 'sql' }], edges: [] }))));
    // An even run of backslashes reads back as written; an odd one before a quote gets a space.
    expect(titles).toEqual(['a\\ ', 'a\\ &quot;b', 'a\\\\&quot;b', 'a\\\\']);
  });
});
