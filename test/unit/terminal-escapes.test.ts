/**
 * Spec- and SQL-authored text reaches the terminal as text in every human answer: a spec's name, a
 * task queue, a check's name or a column name cannot clear the screen, move the cursor over
 * earlier lines or hide a link (OSC 8). Renderers make their data printable (client/printable.ts),
 * and `print` and the error printer make the whole text printable again, colours kept, in case
 * one forgot; JSON keeps the data exactly (JSON.stringify escapes control characters itself).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { LedgerRow } from '../../activities/warehouse/types.ts';
import { printableLines, printableText, terminalText } from '../../client/printable.ts';
import { renderLineage } from '../../client/render.ts';
import { renderDiff } from '../../client/render-diff.ts';
import { main } from '../../client/cli.ts';
import { runCli } from './run-cli.ts';

/** ESC [2J clears the screen, ESC [H homes the cursor, OSC 8 makes "ok" a link to evil.example. */
const ESCAPES = '\\e[2J\\e[H\\e]8;;https://evil.example\\aok\\e]8;;\\a';
/** What a terminal would act on: ESC, BEL or any other C0/C1 control but newline. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function specFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'terminal-escapes-'));
  const path = join(dir, 'spec.yaml');
  writeFileSync(path, yaml);
  return path;
}

/** What `backfill <args>` wrote on stderr and its exit code. */
async function stderrOf(...args: string[]): Promise<{ stderr: string; code: number }> {
  let stderr = '';
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const before = process.exitCode;
  try {
    await main(['node', 'backfill', ...args]);
    return { stderr, code: Number(process.exitCode ?? 0) };
  } finally {
    err.mockRestore();
    out.mockRestore();
    process.exitCode = before;
  }
}

describe('terminal output keeps spec text as text', () => {
  it('backfill plan: the spec name (any string) is printed as text', async () => {
    const path = specFile(`name: "shop${ESCAPES}"\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }\nnodes:\n  - { id: daily, transform: noop }\n`);
    const { stdout, code } = await runCli('plan', path);
    expect(code).toBe(0);
    expect(stdout).not.toMatch(CONTROL);
    expect(stdout).toContain('shop [2J [H ]8;;https://evil.example ok ]8;; : 2 partitions');
  });

  it('backfill plan --json: the spec name keeps its characters, escaped by JSON', async () => {
    const path = specFile(`name: "shop${ESCAPES}"\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }\nnodes:\n  - { id: daily, transform: noop }\n`);
    const { stdout, code } = await runCli('plan', path, '--json');
    expect(code).toBe(0);
    expect(stdout).not.toMatch(CONTROL);
    expect((JSON.parse(stdout) as { name: string }).name).toBe('shop\u001b[2J\u001b[H\u001b]8;;https://evil.example\u0007ok\u001b]8;;\u0007');
  });

  it('backfill plan --estimate: a task queue name (any string) is printed as text', async () => {
    const path = specFile(`name: shop\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }\ndefaults: { taskQueue: "q${ESCAPES}" }\nnodes:\n  - { id: daily, transform: noop }\n`);
    const { stdout, code } = await runCli('plan', path, '--estimate');
    expect(code).toBe(0);
    expect(stdout).not.toMatch(CONTROL);
  });

  it('an error message that echoes spec text (an unknown transform) is printed as text; --json keeps it exactly', async () => {
    const path = specFile(`name: shop\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }\nnodes:\n  - { id: daily, transform: "load${ESCAPES}" }\n`);
    const { stderr, code } = await stderrOf('plan', path);
    expect(code).not.toBe(0);
    expect(stderr).toContain("'load [2J [H ]8;;https://evil.example ok ]8;; ' is not a registered transform");
    expect(stderr).not.toMatch(CONTROL);
    const { stdout } = await runCli('plan', path, '--json');
    expect((JSON.parse(stdout) as { error: { message: string } }).error.message).toContain("'load\u001b[2J\u001b[H\u001b]8;;https://evil.example\u0007ok\u001b]8;;\u0007' is not");
  });

  it("backfill lineage: a warned check's name and the transform, from the ledger, are printed as text", () => {
    const row: LedgerRow = {
      node: 'daily', partition: '2024-01-01', version: 1, status: 'published', backfillId: 'bf', runKey: 'r', workflowId: 'w', rowCount: 1,
      checksum: 'c'.repeat(64), schemaHash: 's', transform: 'load\u001b[2J', params: {}, codeVersion: 'code', inputs: [], attempt: 1, executions: 1,
      startedAt: '2024-01-01T00:00:00.000Z', finishedAt: '2024-01-01T00:00:01.000Z', durationMs: 1000, previousVersion: null, error: null,
      // evaluateChecks writes `<check name>: ...`; the name is the spec's, any string.
      warnings: ['rows\u001b[1A\u001b[2K: 0 rows, fewer than 1'], specHash: null, cost: null, current: true,
    };
    const text = renderLineage('daily', '2024-01-01', [row]);
    expect(text).not.toMatch(CONTROL);
  });

  it("backfill diff: a column name (from the node's SQL: SELECT 1 AS \"...\") is printed as text", () => {
    const counts = { partitions: 1, rowsBefore: 1, rowsAfter: 1, added: 0, removed: 0, changed: 1 };
    const text = renderDiff('bf', 'staged', { ...counts, nodes: [{ ...counts, node: 'daily', key: null, columns: [{ column: 'v\u001b[2J\u001b[H', before: { sum: 1, min: 1, max: 1 }, after: { sum: 2, min: 2, max: 2 } }] }] });
    expect(text).not.toMatch(CONTROL);
  });
});

describe('the text of a whole answer, before the terminal', () => {
  const RED = (s: string) => `\u001b[31m${s}\u001b[39m`;

  it('keeps lines and colour sequences, and blanks every other control or bidirectional character', () => {
    expect(terminalText(`${RED('error:')} a\u001b[2Jb\u001b]8;;x\u0007c\u202ed\te\r\nf`)).toBe(`${RED('error:')} a [2Jb ]8;;x c d e \nf`);
    expect(printableLines('a\u001b[31mb\nc\u0007')).toBe('a [31mb\nc ');
  });

  it("changes nothing that is printable already: a renderer's printable text is not escaped twice", () => {
    const raw = 'shop\u001b[2J\u001b]8;;https://evil.example\u0007ok\u001b]8;;\u0007\n\u009b1A\u202e';
    expect(printableText(printableText(raw))).toBe(printableText(raw));
    for (const once of [printableText(raw), printableLines(raw)]) {
      expect(printableLines(once)).toBe(once);
      expect(terminalText(once)).toBe(once);
    }
    expect(terminalText(terminalText(RED(raw)))).toBe(terminalText(RED(raw)));
  });
});
