/** The report as one self-contained HTML file: inline styles, the timeline as inline SVG, no external assets. */
import type { Report } from './model.ts';
import { actionsTable, binText, changesTable, criticalPathText, rateText, nodesTable, overview, planTable, problemsTable, spansTable, specTable, stagedColumnsTable, stagedTable, stagedText, type Table } from './sections.ts';
import { rateSvg, timelineSvg } from './vega.ts';
import { legend, reportGraph } from './graph.ts';
import { toSvg } from '../graph/svg.ts';
import { printableLines } from '../printable.ts';

export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

function table(t: Table, id: string): string {
  if (t.rows.length === 0) return '<p class="none">None.</p>';
  const cell = (tag: 'th' | 'td', text: string, i: number) => `<${tag}${t.numeric?.[i] ? ' class="num"' : ''}>${escapeHtml(text)}</${tag}>`;
  return [
    `<table id="${id}">`,
    `<thead><tr>${t.head.map((h, i) => cell('th', h, i)).join('')}</tr></thead>`,
    `<tbody>${t.rows.map((row) => `<tr>${row.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}</tbody>`,
    '</table>',
  ].join('\n');
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
.sub { color: #59636e; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; } dt { color: #59636e; } dd { margin: 0; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: 12px; }
.state-completed { color: #1a7f37; } .state-completed_with_failures, .state-cancelled { color: #9a6700; } .state-failed, .state-terminated, .state-timed_out { color: #d1242f; }
.timeline svg, .graph svg { max-width: 100%; height: auto; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 12px; height: 12px; border: 1px solid; border-radius: 3px; vertical-align: -1px; margin-right: 4px; } .none { color: #59636e; } .notes li { color: #59636e; }
`;

/** A staged backfill's diff: what its publish would change, or changed; nothing for a backfill that was not staged. */
function stagedSection(report: Report): string {
  const text = stagedText(report);
  if (text === null) return '';
  const columns = stagedColumnsTable(report);
  return [
    '<h2>Staged versions</h2>',
    `<p class="sub" id="staged-phase">${escapeHtml(text)}</p>`,
    report.staged?.phase === 'discarded' ? '' : table(stagedTable(report), 'staged-diff'),
    columns.rows.length > 0 ? `<h3>Numeric columns</h3>\n${table(columns, 'staged-columns')}` : '',
  ].filter((part) => part !== '').join('\n');
}

/** The rate's time bin, in words. */
function rateBin(report: Report): string {
  const first = report.timeline.rate[0];
  return binText(first ? first.endMs - first.startMs : 1000);
}

/**
 * The report as an HTML document, with every control character but the line break blanked
 * (`printableLines`): HTML escaping leaves an escape sequence of a reason, a failure message or a
 * spec's text as it is, and `report --output -` (or `cat` of the file) shows it to a terminal,
 * through the tables, the spec's JSON and the pictures' labels alike.
 */
export async function renderHtml(report: Report): Promise<string> {
  return printableLines(await htmlDocument(report));
}

async function htmlDocument(report: Report): Promise<string> {
  const b = report.backfill;
  const [svg, rate] = await Promise.all([timelineSvg(report.timeline), rateSvg(report.timeline)]);
  const graph = reportGraph(report);
  const graphSvg = await toSvg(graph);
  const key = legend(graph)
    .map((l) => `<span><i style="background:${l.fill};border-color:${l.line}"></i>${escapeHtml(l.words)}</span>`)
    .join('');
  const facts = overview(report)
    .map(([label, value]) => `<dt>${escapeHtml(label)}</dt><dd${label === 'state' ? ` class="state-${escapeHtml(b.state)}"` : ''}>${escapeHtml(value)}</dd>`)
    .join('\n');
  const sqlNodes = report.spec.nodes.filter((node) => node.sql !== undefined);
  const detail = report.timeline.detail === 'bins' ? ` (${report.totals.published.toLocaleString('en-US')} partitions in time bins of ${binText(report.timeline.binMs ?? 0)}, shaded by how many ran at once)` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>backfill ${escapeHtml(b.id)}: audit report</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Backfill ${escapeHtml(b.id)}</h1>
<p class="sub">${escapeHtml(report.spec.name)}${report.spec.description ? ` — ${escapeHtml(report.spec.description)}` : ''} · report generated ${escapeHtml(report.generatedAt)}${b.uiUrl === null ? '' : ` · <a href="${escapeHtml(b.uiUrl)}">Temporal Web UI</a>`}</p>
<dl id="overview">
${facts}
</dl>

<h2>Timeline</h2>
<p class="sub">One lane per node; each bar a partition from its start to its finish${escapeHtml(detail)}. Grey: paused. Orange: throttled by the downstream system. Dashed purple: a limit changed by an operator (#: its row in the operator actions).</p>
<div class="timeline" id="timeline">
${svg}
</div>
<h3>Rate over time</h3>
<p class="sub">Partitions finished per second, every node's, in time bins of ${escapeHtml(rateBin(report))}; paused spans and limit changes as on the timeline. ${escapeHtml(rateText(report))}</p>
<div class="timeline" id="rate">
${rate}
</div>
<h3>Paused and throttled spans</h3>
${table(spansTable(report), 'spans')}

<h2>Operator actions</h2>
<p class="sub">Every action on this backfill run, from its workflow histories: who sent it (declared by the sender's Temporal client, unless a signature was verified), why, and what it changed. Limit changes are the dashed purple lines on the timeline, labelled with their number.</p>
${table(actionsTable(report), 'actions')}

<h2>Graph</h2>
<p class="sub">The datasets and how each depends on the others (the arrows name the mappings), coloured by how their partitions ended.</p>
<div class="graph" id="graph">
${graphSvg}
<p class="legend">${key}</p>
</div>

<h2>Nodes</h2>
${table(nodesTable(report), 'nodes')}

<h2>What changed against the previous versions</h2>
${table(changesTable(report), 'changes')}
${stagedSection(report)}

<h2>Failures and checks</h2>
${table(problemsTable(report), 'problems')}

<h2>Plan</h2>
${table(planTable(report), 'plan')}
<p>Critical path: ${escapeHtml(criticalPathText(report))}</p>

<h2>Spec and parameters</h2>
${table(specTable(report), 'spec')}
${sqlNodes.map((node) => `<h3>${escapeHtml(node.id)}</h3>\n<pre>${escapeHtml(node.sql ?? '')}</pre>`).join('\n')}
<details><summary>The resolved spec, as the workflows received it</summary>
<pre id="resolved-spec">${escapeHtml(JSON.stringify(report.spec, null, 2))}</pre>
</details>

${report.notes.length > 0 ? `<h2>Notes</h2>\n<ul class="notes">${report.notes.map((note) => `<li>${escapeHtml(note)}</li>`).join('\n')}</ul>` : ''}
</body>
</html>
`;
}
