/** The report as Markdown: the same tables as the HTML report; the timeline as its list of spans (the picture is in the HTML). */
import type { Report } from './model.ts';
import { reportGraph } from './graph.ts';
import { toMermaid } from '../graph/mermaid.ts';
import { printableLines, printableText } from '../printable.ts';
import { actionsTable, binText, changesTable, criticalPathText, rateText, nodesTable, overview, planTable, problemsTable, spansTable, specTable, stagedColumnsTable, stagedTable, stagedText, type Table } from './sections.ts';
import { shellWord } from '../../core/shell-word.ts';

/**
 * Text that stays inside one table cell and shows as written; its control characters blanked
 * (`printableText`): a reason's escape sequence would act on the terminal of whoever reads the
 * report there (`report --format md --output -`, `cat`).
 */
export function escapeCell(text: string): string {
  return printableText(text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[*`<>[\]]/g, (c) => `\\${c}`).replace(/\r\n|\r|\n/g, ' '));
}

/**
 * A fenced code block that holds `code` whatever it contains: its fence is longer than any run of
 * backticks in it (CommonMark closes a fence at the first line of at least as many), so SQL with
 * three backticks in a comment cannot end the block and put its own Markdown in the report.
 */
export function codeBlock(shown: string, language: string): string[] {
  const code = printableLines(shown);
  const longest = Math.max(0, ...(code.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [`${fence}${language}`, code, fence];
}

function table(t: Table): string {
  if (t.rows.length === 0) return '_None._';
  const align = t.head.map((_, i) => (t.numeric?.[i] ? '---:' : '---'));
  return [t.head, align, ...t.rows]
    .map((row, r) => `| ${row.map((c) => (r === 1 ? c : escapeCell(c))).join(' | ')} |`)
    .join('\n');
}

/** A staged backfill's diff: what its publish would change, or changed; nothing for a backfill that was not staged. */
function stagedSection(report: Report): string[] {
  const text = stagedText(report);
  if (text === null) return [];
  const columns = stagedColumnsTable(report);
  return [
    '## Staged versions',
    '',
    escapeCell(text),
    '',
    ...(report.staged?.phase === 'discarded' ? [] : [table(stagedTable(report)), '']),
    ...(columns.rows.length > 0 ? ['### Numeric columns', '', table(columns), ''] : []),
  ];
}

export function renderMarkdown(report: Report): string {
  const b = report.backfill;
  const timeline =
    report.timeline.detail === 'bins'
      ? `${report.totals.published.toLocaleString('en-US')} partitions over ${report.timeline.lanes.length} nodes, in time bins of ${binText(report.timeline.binMs ?? 0)}.`
      : `${report.timeline.marks.length} partitions over ${report.timeline.lanes.length} nodes.`;
  return [
    `# Backfill ${escapeCell(b.id)}`,
    '',
    `${escapeCell(report.spec.name)}${report.spec.description ? ` — ${escapeCell(report.spec.description)}` : ''} · report generated ${report.generatedAt}${b.uiUrl === null ? '' : ` · [Temporal Web UI](${b.uiUrl})`}`,
    '',
    table({ head: ['', ''], rows: overview(report) }),
    '',
    '## Timeline',
    '',
    `${timeline} ${rateText(report)} The picture is in the HTML report (\`backfill report ${shellWord(b.id)} --format html\`). Paused and throttled spans:`,
    '',
    table(spansTable(report)),
    '',
    '## Operator actions',
    '',
    "Every action on this backfill run: who sent it (declared by the sender's Temporal client, unless a signature was verified), why, and what it changed.",
    '',
    table(actionsTable(report)),
    '',
    '## Graph',
    '',
    'The datasets, coloured by how their partitions ended (a Mermaid chart: GitHub and GitLab draw it).',
    '',
    ...codeBlock(toMermaid(reportGraph(report)).trimEnd(), 'mermaid'),
    '',
    '## Nodes',
    '',
    table(nodesTable(report)),
    '',
    '## What changed against the previous versions',
    '',
    table(changesTable(report)),
    '',
    ...stagedSection(report),
    '## Failures and checks',
    '',
    table(problemsTable(report)),
    '',
    '## Plan',
    '',
    table(planTable(report)),
    '',
    `Critical path: ${escapeCell(criticalPathText(report))}`,
    '',
    '## Spec and parameters',
    '',
    table(specTable(report)),
    '',
    ...report.spec.nodes.filter((node) => node.sql !== undefined).flatMap((node) => [`### ${node.id}`, '', ...codeBlock(node.sql!.trimEnd(), 'sql'), '']),
    ...(report.notes.length > 0 ? ['## Notes', '', ...report.notes.map((note) => `- ${escapeCell(note)}`), ''] : []),
  ].join('\n');
}
