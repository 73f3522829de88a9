import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import type { Status } from '../../client/backfill-client.ts';
import { ProgressView } from '../../client/progress-view.ts';
import { renderEnd } from '../../client/render.ts';
import { WorkflowBusyError } from '../../client/status-errors.ts';
import { watch, watchEndsAt } from '../../client/watch.ts';
import { ACTIVE_STATES, type BackfillState } from '../../core/protocol.ts';

function status(state: BackfillState): Status {
  return {
    backfillId: 'b',
    name: 'shop',
    state,
    paused: false,
    rate: null,
    concurrency: null,
    total: 10,
    done: 0,
    running: 0,
    failed: 0,
    blocked: 0,
    pending: 10,
    throughput: null,
    etaSeconds: null,
    runs: 1,
    nodes: [],
    waiting: [],
  };
}

/** A client whose status answers these states in turn (the last one from then on), counting the polls. */
function answering(...states: BackfillState[]) {
  let polls = 0;
  return {
    get polls() {
      return polls;
    },
    status: async () => status(states[Math.min(polls++, states.length - 1)]!),
  };
}

describe('--watch', () => {
  it('watches a start the policy holds (for approval, or until its run window opens) until it ends', async () => {
    const client = answering('awaiting_approval', 'waiting_for_window', 'running', 'completed');
    const final = await watch(client, 'b', true, 1);
    expect(final.state).toBe('completed');
    expect(client.polls).toBe(4);
  });

  it('looks again every interval after the last look, handing each look to show (status --watch and start --watch on a pipe)', async () => {
    vi.useFakeTimers();
    try {
      const client = answering('running', 'running', 'running', 'running', 'completed');
      const shown: Array<[BackfillState, boolean]> = [];
      const final = watch(client, 'b', false, 500, undefined, (s, last) => shown.push([s.state, last]));
      await vi.advanceTimersByTimeAsync(0);
      expect(client.polls).toBe(1);
      await vi.advanceTimersByTimeAsync(499);
      expect(client.polls).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(client.polls).toBe(2);
      await vi.advanceTimersByTimeAsync(1500);
      expect((await final).state).toBe('completed');
      expect(shown).toEqual([['running', false], ['running', false], ['running', false], ['running', false], ['completed', true]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('stops where the backfill waits for an operator to publish or approve what it computed', async () => {
    for (const state of ['staged', 'awaiting_canary'] as const) {
      const client = answering('running', state, 'completed');
      expect((await watch(client, 'b', true, 1)).state).toBe(state);
      expect(client.polls).toBe(2);
    }
  });

  it('stops at every state that has ended, and at no other active state than those two', () => {
    for (const state of ACTIVE_STATES) expect(watchEndsAt(state), state).toBe(state === 'staged' || state === 'awaiting_canary');
    for (const state of ['completed', 'completed_with_failures', 'failed', 'cancelled', 'discarded', 'canary_failed'] as const) expect(watchEndsAt(state), state).toBe(true);
  });
});

describe('--watch on a pipe', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('prints a line per state it passes, but not the one it ends at: the command prints how it ended', async () => {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    const isTTY = process.stderr.isTTY;
    process.stderr.isTTY = false;
    try {
      const final = await watch(answering('awaiting_approval', 'awaiting_approval', 'running', 'running', 'completed'), 'b', false, 1);
      expect(final.state).toBe('completed');
    } finally {
      process.stderr.isTTY = isTTY;
    }
    // Before, the end's headline was printed here and again by the command: twice in a log.
    expect(stderr.split('\n').filter(Boolean).map((line) => line.split(' · ')[0])).toEqual(['b awaiting_approval', 'b running']);
  });
});

/**
 * A terminal's stream: isTTY, and what it shows once the escape sequences the progress bars write
 * (cursor up and down, to a column, clear to the end of the line or of the screen) have moved and
 * erased; colours and modes are left out.
 */
class Screen extends Writable {
  readonly isTTY = true;
  readonly columns = 160;
  private lines: string[] = [''];
  private row = 0;
  private col = 0;

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    const text = String(chunk);
    for (let i = 0; i < text.length; i++) {
      const escape = /^\x1b\[\??([0-9;]*)([A-Za-z])/.exec(text.slice(i));
      if (escape) {
        i += escape[0].length - 1;
        this.control(escape[2]!, Number(escape[1] || 1), escape[1] ?? '');
      } else if (text[i] === '\r') this.col = 0;
      else if (text[i] === '\n') this.moveTo(this.row + 1, 0);
      else this.put(text[i]!);
    }
    done();
  }

  /** The lines the terminal shows, without trailing blank ones. */
  shown(): string[] {
    const lines = this.lines.map((line) => line.trimEnd());
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines;
  }

  private control(code: string, n: number, raw: string): void {
    if (code === 'A') this.moveTo(Math.max(0, this.row - n), this.col);
    else if (code === 'B') this.moveTo(this.row + n, this.col);
    else if (code === 'G') this.col = n - 1;
    else if (code === 'K') this.lines[this.row] = this.lines[this.row]!.slice(0, this.col);
    else if (code === 'J' && (raw === '' || raw === '0')) this.lines = [...this.lines.slice(0, this.row), this.lines[this.row]!.slice(0, this.col)];
  }

  private moveTo(row: number, col: number): void {
    while (this.lines.length <= row) this.lines.push('');
    this.row = row;
    this.col = col;
  }

  private put(char: string): void {
    const line = this.lines[this.row]!.padEnd(this.col);
    this.lines[this.row] = line.slice(0, this.col) + char + line.slice(this.col + 1);
    this.col++;
  }
}

describe('--watch on a terminal', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const node = (done: number) => ({ id: 'orders', total: 4, done, running: 0, failed: 0, blocked: 0, pending: 4 - done, rate: null, concurrency: 2, throttles: 0, throughput: null, etaSeconds: null, failures: [] });
  const at = (state: BackfillState, done: number): Status => ({ ...status(state), rate: 5, concurrency: 2, total: 4, done, pending: 4 - done, nodes: [node(done)] });

  it("leaves the bars in their final state, and the headline to the end the command prints after them: once", () => {
    // The bars draw on their own timer.
    vi.useFakeTimers();
    const screen = new Screen();
    const view = new ProgressView(screen as unknown as NodeJS.WriteStream);
    view.update(at('running', 1));
    vi.advanceTimersByTime(1000);
    // While it runs, the header line above the bars is the headline.
    expect(screen.shown()).toEqual([expect.stringMatching(/^b running · 1\/4 done/), expect.stringMatching(/^orders +█+░+ +25%/)]);
    view.update(at('running', 3));
    vi.advanceTimersByTime(1000);
    const final = at('completed', 4);
    view.update(final, true);
    view.stop();
    // What start --watch, status --watch and demo print next, on the same terminal (status and demo: a table under the same headline).
    screen.write(`${renderEnd(final)}\n`);
    const shown = screen.shown();
    // Before, the header line said 'b completed · 4/4 done …' above the bars, and the end said it again below them.
    expect(shown.filter((line) => line.startsWith('b completed'))).toHaveLength(1);
    expect(shown).toEqual([expect.stringMatching(/^orders +█+ 100% {2}4\/4/), expect.stringMatching(/^b completed · 4\/4 done · .* · rate 5\/s · concurrency 2$/)]);
  });
});

describe("--watch's notes", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A stream that keeps what is written to it, escape sequences and all. */
  class Raw extends Writable {
    text = '';
    constructor(readonly isTTY: boolean) {
      super();
    }
    override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
      this.text += String(chunk);
      done();
    }
  }

  it("print a worker's absence as text: its message names the workflow task queue, any string a hand-made start gave", () => {
    vi.useFakeTimers();
    const queue = 'q\u001b]8;;https://evil.example\u0007here\u001b]8;;\u0007\u001b[2J';
    const line = `b: backfill 'b' is running but no worker polls its workflow task queue '${queue}'; waiting for a worker`;
    const pipe = new Raw(false);
    new ProgressView(pipe as unknown as NodeJS.WriteStream).note(line);
    expect(pipe.text).toBe("b: backfill 'b' is running but no worker polls its workflow task queue 'q ]8;;https://evil.example here ]8;;  [2J'; waiting for a worker\n");
    const terminal = new Raw(true);
    const view = new ProgressView(terminal as unknown as NodeJS.WriteStream);
    view.update({ ...status('running'), nodes: [] });
    view.note(line);
    vi.advanceTimersByTime(1000);
    view.stop();
    expect(terminal.text).toContain('here ]8;;  [2J');
    expect(terminal.text).not.toContain('\u001b]8');
    expect(terminal.text).not.toContain('\u001b[2J');
  });
});

describe('--watch while the worker is away', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A client whose status fails with `failures` in turn, then answers `completed`. */
  function away(...failures: Error[]) {
    let polls = 0;
    return {
      get polls() {
        return polls;
      },
      status: async () => {
        const failure = failures[polls++];
        if (failure) throw failure;
        return status('completed');
      },
    };
  }

  it('rides out no_worker and timeout (a worker restarting), as wait does, saying it waits for a worker', async () => {
    vi.useFakeTimers();
    const noWorker = new BackfillError('no_worker', "backfill 'b' is running but no worker polls its workflow task queue 'q'");
    const client = away(noWorker, noWorker, new BackfillError('timeout', "backfill 'b' is running but no worker answered within 15s"), new Error('14 UNAVAILABLE'));
    const notes: string[] = [];
    const final = watch(client, 'b', true, 1, (line) => notes.push(line));
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await final).state).toBe('completed');
    expect(client.polls).toBe(5);
    expect(notes).toEqual([expect.stringMatching(/^b: backfill 'b' is running but no worker polls .*; waiting for a worker \(for up to 120s\)$/)]);
  });

  it('rides out a busy workflow (its workers poll), saying it is busy and tries again, not that it waits for a worker', async () => {
    vi.useFakeTimers();
    const busy = new WorkflowBusyError('b', 'q', 'the server refused a query: consistent query buffer is full');
    const client = away(busy, busy);
    const notes: string[] = [];
    const final = watch(client, 'b', true, 1, (line) => notes.push(line));
    await vi.advanceTimersByTimeAsync(5000);
    expect((await final).state).toBe('completed');
    expect(notes).toEqual(["b: the backfill's workflow is busy (the server refused a query: consistent query buffer is full); trying again (for up to 120s)"]);
    expect(notes.join('')).not.toMatch(/start one|waiting for a worker/);
  });

  it('rides out a workflow task that fails (workers of two releases in a deploy, say), saying so', async () => {
    vi.useFakeTimers();
    const failing = new BackfillError('workflow_task_failing', "backfill 'b' is running but its workflow task has failed 2 times in a row: the workers poll but cannot run its code, so it makes no progress.");
    const client = away(failing, failing);
    const notes: string[] = [];
    const final = watch(client, 'b', true, 1, (line) => notes.push(line));
    await vi.advanceTimersByTimeAsync(5000);
    expect((await final).state).toBe('completed');
    expect(notes).toEqual([expect.stringMatching(/^b: backfill 'b' is running but its workflow task has failed .* makes no progress\. Waiting for it to pass \(for up to 120s\)$/)]);
  });

  it('gives up with the error once the worker has been away for two minutes', async () => {
    vi.useFakeTimers();
    const noWorker = new BackfillError('no_worker', 'no worker');
    const client = { status: async (): Promise<never> => Promise.reject(noWorker) };
    const outcome = watch(client, 'b', true, 1, () => undefined).then(
      () => 'ended',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(60_000);
    await vi.advanceTimersByTimeAsync(70_000);
    expect(await outcome).toBe(noWorker);
  });

  it('ends at once on any other error the server answers (not found)', async () => {
    const missing = new BackfillError('not_found', 'no backfill');
    await expect(watch(away(missing), 'b', true, 1, () => undefined)).rejects.toBe(missing);
  });
});
