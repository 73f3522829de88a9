/**
 * `--watch`'s live progress, in a module of its own so that only a command that watches loads
 * the progress bars (cli-progress); the lines it shows are render.ts's.
 */
import cliProgress from 'cli-progress';
import pc from 'picocolors';
import type { Progress } from '../core/protocol.ts';
import { printable, terminalText } from './printable.ts';
import { barPayload, headline, renderWaiting } from './render.ts';
import type { Waiting } from './waiting.ts';

/**
 * Live progress: one bar per node on a terminal; on a pipe (CI logs), a short status line
 * every few seconds instead.
 */
export class ProgressView {
  private multibar: cliProgress.MultiBar | undefined;
  private bars = new Map<string, cliProgress.SingleBar>();
  private header: cliProgress.SingleBar | undefined;
  /** A line per node that has waited for a worker, blank once it no longer does. */
  private waitingLines = new Map<string, cliProgress.SingleBar>();
  private lastLine = 0;
  private lastState: Progress['state'] | undefined;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY);
  }

  /**
   * `last`: the watch ends at this progress. The command that watched prints how the backfill
   * ended, headline first, so the view leaves the headline out then: on a pipe it prints no line,
   * and on a terminal the bars stay in their final state without the header line above them.
   */
  update(shown: Progress & { waiting?: Waiting[] }, last = false): void {
    // Once for the whole update: the headline, the bars' node names and the waiting lines print its text.
    const progress = printable(shown);
    if (!this.tty) {
      const now = Date.now();
      if (!last && (now - this.lastLine >= 5000 || progress.state !== this.lastState)) {
        this.lastLine = now;
        this.lastState = progress.state;
        this.out.write(`${[headline(progress), ...renderWaiting(progress)].join('\n')}\n`);
      }
      return;
    }
    if (!this.multibar) {
      const width = Math.max(...progress.nodes.map((n) => n.id.length), 8);
      this.multibar = new cliProgress.MultiBar(
        {
          stream: this.out,
          hideCursor: true,
          clearOnComplete: false,
          barsize: 28,
          autopadding: true,
          format: (options, params, payload: { name?: string; details?: string; line?: string }) => {
            if (payload.line !== undefined) return payload.line;
            const size = options.barsize ?? 28;
            const filled = Math.round(params.progress * size);
            const bar = pc.green('█'.repeat(filled)) + pc.dim('░'.repeat(size - filled));
            return `${(payload.name ?? '').padEnd(width)} ${bar} ${String(Math.floor(params.progress * 100)).padStart(3)}%  ${payload.details ?? ''}`;
          },
        },
        cliProgress.Presets.shades_classic,
      );
      this.header = this.multibar.create(1, 0, { line: headline(progress) });
      for (const node of progress.nodes) {
        this.bars.set(node.id, this.multibar.create(Math.max(node.total, 1), 0, { name: node.id, ...barPayload(node, progress) }));
      }
    }
    if (last && this.header) {
      this.multibar.remove(this.header);
      this.header = undefined;
    }
    this.header?.update(0, { line: headline(progress) });
    for (const node of progress.nodes) {
      this.bars.get(node.id)?.update(node.total === 0 ? 1 : node.done + node.failed, { name: node.id, ...barPayload(node, progress) });
    }
    const multibar = this.multibar;
    const lines = renderWaiting(progress);
    const waiting = new Map((progress.waiting ?? []).map((w, i) => [w.node, lines[i] ?? '']));
    for (const node of waiting.keys()) if (!this.waitingLines.has(node)) this.waitingLines.set(node, multibar.create(1, 0, { line: '' }));
    for (const [node, bar] of this.waitingLines) bar.update(0, { line: waiting.get(node) ?? '' });
  }

  /** A line above the bars (on a pipe, a line of its own), as text: it may quote an error's message, which names the task queue (any string). */
  note(shown: string): void {
    const line = terminalText(shown);
    if (this.multibar) this.multibar.log(`${line}\n`);
    else this.out.write(`${line}\n`);
  }

  stop(): void {
    this.multibar?.stop();
    this.multibar = undefined;
  }
}
