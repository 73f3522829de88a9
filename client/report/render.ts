/** One entry point for every format of the report. */
import { BackfillError } from '../../core/errors.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import type { Report } from './model.ts';

export const REPORT_FORMATS = ['html', 'json', 'md'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export function reportFormat(value: string): ReportFormat {
  const format = REPORT_FORMATS.find((f) => f === value);
  if (!format) throw new BackfillError('invalid_argument', `--format '${value}' is not a report format: use ${REPORT_FORMATS.join(', ')}`, 'format');
  return format;
}

/** The format an output file's extension asks for (.html, .htm, .json, .md), if any. */
export function formatOfPath(path: string): ReportFormat | undefined {
  const extension = /\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase();
  if (extension === 'htm' || extension === 'html') return 'html';
  if (extension === 'json') return 'json';
  if (extension === 'md' || extension === 'markdown') return 'md';
  return undefined;
}

export async function renderReport(report: Report, format: ReportFormat): Promise<string> {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  if (format === 'md') return renderMarkdown(report);
  return renderHtml(report);
}
