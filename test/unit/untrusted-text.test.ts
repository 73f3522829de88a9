/**
 * Text anyone may write (a spec's description, a task queue, a failure's message, a reason, a
 * declared identity) reaches operators as text: never as live markdown or HTML in the Web UI's
 * details, never as escape sequences in their terminal.
 */
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { backfillCurrentDetails, backfillDetails, nodeDetails } from '../../core/details.ts';
import { expandPlan } from '../../core/plan.ts';
import type { NodeProgress, Progress } from '../../core/protocol.ts';
import { resolveSpec } from '../../core/spec.ts';
import { renderStatus } from '../../client/render.ts';
import { renderAudit } from '../../client/render-audit.ts';
import { printable, printableText } from '../../client/printable.ts';
import { ProgressView } from '../../client/progress-view.ts';
import type { AuditEntry } from '../../core/audit.ts';

// Counts the calls of printable from the renderers; its own walk inside is not counted.
vi.mock('../../client/printable.ts', async (original) => {
  const actual = await original<typeof import('../../client/printable.ts')>();
  return { ...actual, printable: vi.fn(actual.printable) };
});

const LINK = '[Approve the fix here](https://evil.example/login)';
const HTML = '<img src=x onerror=alert(1)>';

function progress(overrides: Partial<Progress> = {}, node: Partial<NodeProgress> = {}): Progress {
  const n: NodeProgress = {
    id: 'daily', total: 10, done: 5, running: 1, failed: 1, blocked: 0, pending: 3, rate: null, concurrency: 4,
    throttles: 0, throughput: 1, etaSeconds: 4, failures: [], ...node,
  };
  return {
    backfillId: 'b1', name: 'shop', state: 'running', paused: false, rate: null, concurrency: null,
    total: n.total, done: n.done, running: n.running, failed: n.failed, blocked: n.blocked, pending: n.pending,
    throughput: 1, etaSeconds: 4, runs: 1, nodes: [n], ...overrides,
  };
}

/** A markdown renderer would turn this into a link or an HTML element: `[..](..)` or `<tag` not escaped. */
const live = (md: string) => /(?<!\\)\[[^\]]*(?<!\\)\]\((?!\\)|(?<!\\)<[a-z]/i.test(md);

describe('the Web UI details show spec and failure text as written, not as markdown or HTML', () => {
  it("the backfill workflow's static details: the spec's description", () => {
    const spec = resolveSpec({ name: 'shop', description: `${LINK} ${HTML}`, partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'daily', transform: 'noop' }] });
    const details = backfillDetails(spec, expandPlan(spec), {});
    // plainCell (core/details.ts:27) escapes exactly this for operator reasons; the description gets only `escape` (| and \n).
    expect(live(details), details).toBe(false);
  });

  it("a node workflow's static details: the node's task queue (any string up to 1,000 characters) and transform name", () => {
    const spec = resolveSpec({ name: 'shop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'daily', transform: 'noop', taskQueue: `${LINK}${HTML}` }, { id: 'other', transform: LINK }] });
    const plan = expandPlan(spec);
    const node = nodeDetails(spec.nodes[0]!, plan.nodes[0]!.partitions);
    expect(live(node), node).toBe(false);
    const parent = backfillDetails(spec, plan, {});
    expect(live(parent), parent).toBe(false);
  });

  it("the backfill's current details: the last error (a failure message, e.g. a check's name or a transform's error)", () => {
    const p = progress({}, { failures: [{ message: `checks failed for daily 2024-01-01: ${LINK}: ${HTML}`, type: 'CheckFailed', partitions: 1, examples: ['2024-01-01'] }] });
    const details = backfillCurrentDetails(p);
    expect(live(details), details).toBe(false);
  });

  it("the backfill's current details: the canary approver's declared identity (`by`, sent by any client)", () => {
    const p = progress({ canary: { phase: 'approved', pick: 'newest', perNode: 1, partitions: 1, auto: null, diff: null, note: null, decision: { action: 'approve', by: `${LINK} ${HTML}`, reason: 'ok', at: 0, auto: false } } as never });
    const details = backfillCurrentDetails(p);
    expect(live(details), details).toBe(false);
  });
});

describe('status and audit in a terminal: no control characters from reasons, identities or failure messages', () => {
  // OSC 8 makes "see runbook" a hyperlink to evil.example; ESC[2K ESC[1A erase and overwrite the line above.
  const OSC8 = '\u001b]8;;https://evil.example\u0007see runbook\u001b]8;;\u0007';
  const ERASE = '\u001b[1A\u001b[2K  daily  10/10 done';
  it('a pause reason (any client may send one, up to 2000 characters), a declared identity and a failure message', () => {
    const lastAction = { seq: 1, at: Date.UTC(2025, 0, 1), action: 'pause', identity: `mallory${ERASE}`, verified: false, reason: `maintenance: ${OSC8}`, outcome: 'applied', details: {} } as const;
    const p = progress(
      { paused: true, governance: { policy: { hash: null, path: null }, planHash: 'h', starter: { identity: 'a', verified: false }, approval: { needed: false, reasons: [], approvedBy: null, approvedAt: null }, holds: [], window: null, budgets: { retries: null, cost: null }, priority: 3, estimate: null, lastAction, recentActions: [lastAction], actions: 1 } as never },
      { failures: [{ message: `boom ${ERASE}`, type: 'Error', partitions: 1, examples: ['2024-01-01'] }] },
    );
    const out = renderStatus(p);
    // picocolors is off without a TTY, so any ESC here came from the data.
    expect(out.includes('\u001b'), JSON.stringify(out)).toBe(false);
    expect(out).toContain('maintenance:  ]8;;https://evil.example see runbook ]8;;');
    const audit = renderAudit('b1', [lastAction as unknown as AuditEntry]);
    expect(audit.includes('\u001b'), JSON.stringify(audit)).toBe(false);
  });

  it('printable keeps text and structure, and blanks control and bidirectional characters', () => {
    expect(printableText('a\u001b[2Kb\u202ec\td')).toBe('a [2Kb c d');
    expect(printable({ n: 1, list: ['x\u0007', null], nested: { s: '\u009b' } })).toEqual({ n: 1, list: ['x ', null], nested: { s: ' ' } });
  });

  it('status makes its text printable once, where it is put together, not again in each section', () => {
    const p = progress({ waiting: [{ node: 'daily', taskQueue: 'q', reason: 'no_worker', lastPollAt: null }] } as Partial<Progress>);
    vi.mocked(printable).mockClear();
    renderStatus(p);
    expect(vi.mocked(printable)).toHaveBeenCalledTimes(1);
  });

  it("--watch on a terminal: the line of a node waiting on a task queue (any string) as text", () => {
    const written: string[] = [];
    const out = Object.assign(new Writable({ write: (chunk: Buffer, _encoding, done) => void (written.push(chunk.toString()), done()) }), { isTTY: true, columns: 400 });
    const view = new ProgressView(out as unknown as NodeJS.WriteStream);
    const OSC8 = '\u001b]8;;https://evil.example\u0007see runbook\u001b]8;;\u0007';
    view.update({ ...progress(), waiting: [{ node: 'daily', taskQueue: `q ${OSC8}`, reason: 'no_worker', lastPollAt: null }] });
    view.stop();
    const text = written.join('');
    expect(text).toContain("task queue 'q  ]8;;https://evil.example see runbook ]8;; '");
    expect(text.includes('\u001b]8;;'), JSON.stringify(text)).toBe(false);
  });
});
