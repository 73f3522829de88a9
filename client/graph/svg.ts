/**
 * A plan graph as SVG, laid out by Graphviz (compiled to WebAssembly: @viz-js/viz) from the
 * DOT text of `dot.ts`. The library (about 1.5 MB of WebAssembly) is imported on first use
 * only, so that `plan` without a picture stays as fast as it was.
 */
import { FONT, toDot } from './dot.ts';
import type { PlanGraph } from './model.ts';

type Viz = { renderString(source: string, options: { format: 'svg' }): string };
let viz: Promise<Viz> | undefined;

export async function toSvg(graph: PlanGraph): Promise<string> {
  viz ??= import('@viz-js/viz').then((module) => module.instance());
  const svg = (await viz).renderString(toDot(graph), { format: 'svg' });
  // Graphviz sizes the boxes with DejaVu Sans's metrics (it knows them; without the font's
  // files it cannot measure any other): where that font is missing, a narrower one fits in them.
  // The XML prologue and doctype would be out of place inside an HTML page.
  return svg.slice(svg.indexOf('<svg')).replaceAll(`font-family="${FONT}"`, `font-family="${FONT}, Verdana, Arial, Helvetica, sans-serif"`);
}
