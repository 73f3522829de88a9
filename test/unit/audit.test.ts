/**
 * The audit trail: what a control's `{ reason, identity }` may be (anyone may send junk with
 * Temporal's CLI), the bounded trail the workflow keeps, how entries read for people, and how
 * `backfill audit` rebuilds the whole trail from a history.
 */
import { stripVTControlCharacters } from 'node:util';
import { msToTs } from '@temporalio/common';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { AUDIT_BYTES, AUDIT_KEEP, AuditTrail, MAX_IDENTITY, MAX_REASON, POLICY_IDENTITY, UNKNOWN_IDENTITY, actorsOf, describeActor, describeChange, isLimitChange, parseMeta, unchangedSince, type AuditEntry } from '../../core/audit.ts';
import { BackfillError } from '../../core/errors.ts';
import { startRequestViolations } from '../../core/governance.ts';
import { ACTIONS } from '../../core/policy.ts';
import { auditOfHistory } from '../../client/audit.ts';
import { renderAudit } from '../../client/render-audit.ts';

const entry = (fields: Partial<AuditEntry> = {}): Omit<AuditEntry, 'seq'> => ({
  at: Date.parse('2024-05-01T12:00:00Z'),
  action: 'pause',
  identity: 'bob@laptop',
  verified: false,
  reason: 'warehouse maintenance',
  outcome: 'applied',
  details: { paused: true, previous: false },
  ...fields,
});

const refusal = (value: unknown): BackfillError => {
  try {
    parseMeta(value);
  } catch (error) {
    expect(error).toBeInstanceOf(BackfillError);
    return error as BackfillError;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be refused`);
};

describe('parseMeta', () => {
  it('takes nothing, or a reason and an identity, trimmed; blank ones count as absent', () => {
    expect(parseMeta(undefined)).toEqual({});
    expect(parseMeta(null)).toEqual({});
    expect(parseMeta({})).toEqual({});
    expect(parseMeta({ reason: '  source fixed  ', identity: 'bob@laptop' })).toEqual({ reason: 'source fixed', identity: 'bob@laptop' });
    expect(parseMeta({ reason: '   ', identity: null })).toEqual({});
  });

  it('refuses anything else with invalid_argument, naming the field', () => {
    expect(refusal('junk').message).toMatch(/must be \{ reason\?, identity\? \} \(got "junk"\)/);
    expect(refusal([1]).message).toMatch(/must be \{ reason\?, identity\? \}/);
    expect(refusal(5).code).toBe('invalid_argument');
    expect(refusal({ reason: 'x', admin: true }).message).toBe("the control's last argument has unknown fields 'admin': it takes reason and identity");
    expect(refusal({ reason: 42 })).toMatchObject({ path: 'reason', message: 'reason must be text (got number)' });
    expect(refusal({ identity: {} })).toMatchObject({ path: 'identity' });
    expect(refusal({ reason: 'x'.repeat(MAX_REASON + 1) }).message).toMatch(/longer than 2000 characters/);
    expect(refusal({ identity: 'x'.repeat(MAX_IDENTITY + 1) }).message).toMatch(/longer than 200 characters/);
    expect(parseMeta({ reason: 'x'.repeat(MAX_REASON) }).reason).toHaveLength(MAX_REASON);
  });
});

describe('AuditTrail', () => {
  it('numbers entries 1, 2, ... and goes on numbering across a JSON round trip (continue-as-new)', () => {
    const trail = AuditTrail.empty();
    expect(trail.record(entry()).seq).toBe(1);
    expect(trail.record(entry({ action: 'resume' })).seq).toBe(2);
    const again = AuditTrail.fromJSON(JSON.parse(JSON.stringify(trail.toJSON())));
    expect(again.record(entry({ action: 'set-rate' })).seq).toBe(3);
    expect(again.total).toBe(3);
    expect(again.last?.action).toBe('set-rate');
    expect(again.recent(2).map((e) => e.seq)).toEqual([2, 3]);
    expect(AuditTrail.fromJSON(undefined).total).toBe(0);
  });

  it(`keeps the newest ${AUDIT_KEEP} entries and at most ${AUDIT_BYTES} bytes, and counts them all`, () => {
    const trail = AuditTrail.empty();
    for (let i = 0; i < AUDIT_KEEP + 25; i++) trail.record(entry());
    expect(trail.recent()).toHaveLength(AUDIT_KEEP);
    expect(trail.recent()[0]!.seq).toBe(26);
    expect(trail.total).toBe(AUDIT_KEEP + 25);
    const long = AuditTrail.empty();
    for (let i = 0; i < 40; i++) long.record(entry({ reason: 'r'.repeat(1500) }));
    expect(JSON.stringify(long.toJSON().entries).length).toBeLessThanOrEqual(AUDIT_BYTES);
    expect(long.last?.seq).toBe(40);
    // One entry is kept whatever its size: the newest is never lost from the state.
    const huge = AuditTrail.empty();
    huge.record(entry({ reason: 'r'.repeat(AUDIT_BYTES * 2) }));
    expect(huge.recent()).toHaveLength(1);
  });

  it('hands out copies: changing what it returned changes nothing kept', () => {
    const trail = AuditTrail.empty();
    trail.record(entry());
    const json = trail.toJSON();
    json.entries[0]!.details.paused = false;
    expect(trail.toJSON().entries[0]!.details.paused).toBe(true);
  });
});

describe('describing entries', () => {
  it('tells the applied limit changes (the report marks them on its timeline) from every other action', () => {
    for (const action of ['set-rate', 'set-concurrency', 'set-queue-rate', 'set-budget'] as const) {
      expect(isLimitChange({ action, outcome: 'applied', details: {} })).toBe(true);
      expect(isLimitChange({ action, outcome: 'refused', details: {} })).toBe(false);
    }
    for (const action of ['start', 'pause', 'resume', 'retry-failed', 'cancel', 'retry', 'approve', 'rollback', 'publish', 'discard', 'budget-pause', 'replace-spec'] as const) {
      expect(isLimitChange({ action, outcome: 'applied', details: {} })).toBe(false);
    }
  });

  it('counts a new run of an ended backfill given limits of its own (resume, retry-failed --rate) as a limit change, and says what they are', () => {
    const resumed = { action: 'resume', outcome: 'applied', details: { resumed: true, partitions: 147, rate: 20 } } as const;
    expect(isLimitChange(resumed)).toBe(true);
    expect(isLimitChange({ ...resumed, outcome: 'refused' })).toBe(false);
    expect(describeChange(resumed)).toBe("resumed: a new run over the backfill's 147 partitions (those published already skipped), rate 20/s");
    const retried = { action: 'retry-failed', outcome: 'applied', details: { resumed: true, partitions: 3, node: 'daily', rate: 50, concurrency: null } } as const;
    expect(isLimitChange(retried)).toBe(true);
    expect(describeChange(retried)).toBe(
      "failed partitions of node daily and those blocked behind them run again in a new run (of the backfill's 3 partitions, the published ones skipped), rate 50/s, concurrency unlimited",
    );
    expect(isLimitChange({ action: 'resume', outcome: 'applied', details: { resumed: true, partitions: 147 } })).toBe(false);
  });

  it('says in words what a cancel, a publish and a new spec did, never as a dump of their fields', () => {
    const said = (action: AuditEntry['action'], details: AuditEntry['details']) => describeChange({ action, outcome: 'applied', details });
    expect(said('cancel', { requested: true })).toBe('cancelled');
    expect(said('cancel', { requested: true, announced: false })).toBe('cancelled through Temporal (its CLI or the Web UI), not backfill cancel');
    expect(said('cancel', { requested: true, note: "the canary's slice was published before the cancel took effect; the rest does not run" })).toBe(
      "cancelled; the canary's slice was published before the cancel took effect; the rest does not run",
    );
    // Recorded as taken, before the warehouse carries it out: what was asked, not what is done.
    expect(said('publish', {})).toBe('publish asked: every staged version, at once');
    expect(said('discard', {})).toBe('discard asked: every staged version, at once');
    expect(said('discard', { canary: true, auto: false })).toBe('canary discarded: its slice dropped, nothing beyond it runs');
    // A canary that failed dropped nothing (it said "staged versions dropped", by "the policy").
    const stopped = '1 partition of the canary failed (first: agg: boom); nothing beyond the canary was written';
    expect(said('discard', { canary: true, stopped })).toBe(`the canary failed and stopped the backfill: ${stopped}; nothing was dropped (what passed stays staged: resume goes on from it, discard drops it)`);
    // Nobody decided it, and no rule of a policy: the canary's own partitions failed it, in a run someone started.
    const canaryStop = { ...entry({ action: 'discard', identity: POLICY_IDENTITY, reason: null, details: { canary: true, stopped } }), seq: 3 };
    expect(describeActor(canaryStop)).toBe("the canary's own failed partitions");
    const trail: AuditEntry[] = [{ ...entry({ action: 'start', identity: 'carol@ops', details: {} }), seq: 1 }, { ...entry({ identity: 'bob@laptop' }), seq: 2 }, canaryStop];
    expect(actorsOf(trail)).toEqual(['carol@ops (declared)', 'bob@laptop (declared)', "the canary's own failed partitions, in the run carol@ops (declared) started"]);
    // A new run of the ended backfill is started by whoever resumed it.
    const resumed = { ...entry({ action: 'resume', identity: 'dana@ops', details: { resumed: true } }), seq: 3 };
    expect(actorsOf([...trail.slice(0, 2), resumed, { ...canaryStop, seq: 4 }])[3]).toBe("the canary's own failed partitions, in the run dana@ops (declared) started");
    // The table wraps the cell beside the others: its words are there, and the policy is not.
    const table = stripVTControlCharacters(renderAudit('bf', trail));
    expect(table).toMatch(/the canary's own failed[\s\S]*partitions, in the run[\s\S]*carol@ops \(declared\)[\s\S]*started/);
    expect(table).not.toMatch(/the policy|the backfill itself/);
    expect(describeActor({ identity: POLICY_IDENTITY, verified: false, action: 'budget-pause', details: {} })).toBe('the policy');
    expect(said('publish', { canary: true, auto: false })).toBe('canary approved: its slice published, the rest runs');
    expect(said('publish', { canary: true, auto: true })).toBe('canary approved by itself (canary.auto): its slice published, the rest runs');
    expect(said('replace-spec', { changed: 'orders, daily', approvalAgain: true })).toBe('a new spec that changes orders, daily: the new plan needs an approval again');
    expect(said('replace-spec', { changed: 'orders', approvalAgain: false })).toBe('a new spec that changes orders');
  });

  it('names a verified signer as such', () => {
    expect(describeActor({ identity: 'bob@example.com', verified: true })).toBe('bob@example.com (verified signature)');
    expect(describeActor({ identity: 'bob@laptop', verified: false })).toBe('bob@laptop (declared)');
    expect(describeActor({ identity: POLICY_IDENTITY, verified: false })).toBe('the policy');
    // Temporal's CLI sends an identity (audit takes it from the history): the text says how to send one, not that the CLI cannot.
    expect(describeActor({ identity: UNKNOWN_IDENTITY, verified: false })).toMatch(/^unknown: the sender named no one .*--identity you@example\.com\)$/);
    // A declared identity that reads like a verified one still ends with how it is known.
    expect(describeActor({ identity: 'alice@example.com (verified signature)', verified: false })).toBe('alice@example.com (verified signature) (declared)');
  });

  it("refuses a declared identity of 'policy' (what the policy does by itself), in a control and in a start", () => {
    for (const identity of ['policy', ' Policy ']) {
      expect(() => parseMeta({ identity })).toThrow(/identity '.*' is reserved for what the policy does by itself/);
      expect(startRequestViolations({ identity }).map((v) => v.message)).toEqual([expect.stringMatching(/is reserved for what the policy does by itself/)]);
    }
    expect(parseMeta({ identity: 'policy-bot@example.com' })).toEqual({ identity: 'policy-bot@example.com' });
  });

  it('says what each change did, in a few words', () => {
    expect(describeChange({ action: 'set-rate', outcome: 'applied', details: { rate: 50, previous: 20, node: 'orders' } })).toBe('rate 20/s → 50/s (node orders)');
    expect(describeChange({ action: 'set-rate', outcome: 'applied', details: { rate: null, previous: 5 } })).toBe('rate 5/s → unlimited');
    expect(describeChange({ action: 'set-queue-rate', outcome: 'applied', details: { rate: 100, queue: 'warehouse' } })).toBe('rate 100/s (task queue warehouse)');
    expect(describeChange({ action: 'set-concurrency', outcome: 'applied', details: { concurrency: 4, previous: 8 } })).toBe('concurrency 8 → 4');
    expect(describeChange({ action: 'set-budget', outcome: 'applied', details: { budget: 'retries', limit: 500, previous: 100, used: 100 } })).toBe('retries budget 100 → 500');
    expect(describeChange({ action: 'retry', outcome: 'applied', details: { retried: 3 } })).toBe('3 failed partitions sent back to run');
    expect(describeChange({ action: 'approve', outcome: 'applied', details: { planHash: 'sha256:0123456789abcdef0123' } })).toBe('approved plan sha256:0123456789ab…');
    expect(describeChange({ action: 'start', outcome: 'applied', details: { resumed: false, partitions: 1500, policyHash: null, planHash: 'sha256:0123', priority: null, fairnessWeight: null } })).toBe('started with 1,500 partitions');
    expect(describeChange({ action: 'start', outcome: 'applied', details: { resumed: true, partitions: 12, policyHash: 'sha256:0123456789abcdef0123', planHash: 'sha256:0123', priority: 1, fairnessWeight: 3 } })).toBe(
      "resumed: a new run over the backfill's 12 partitions (those published already skipped), priority 1, fairness weight 3, policy sha256:0123456789ab…",
    );
    // What it was asked to run: the range and what --only-changed kept (before, neither was in the trail).
    expect(describeChange({ action: 'start', outcome: 'applied', details: { resumed: false, partitions: 1500, from: '2024-01-01T00:00:00Z', to: '2024-03-01T00:00:00Z', onlyChangedKept: 1200 } })).toBe(
      'started with 1,500 partitions, --from 2024-01-01T00:00:00Z --to 2024-03-01T00:00:00Z (end exclusive), --only-changed kept 1,200 unchanged partitions as published',
    );
    expect(describeChange({ action: 'start', outcome: 'applied', details: { resumed: false, partitions: 40, to: '2024-02-01T00:00:00Z', onlyChangedKept: 1 } })).toBe(
      "started with 40 partitions, --from the spec's start --to 2024-02-01T00:00:00Z (end exclusive), --only-changed kept 1 unchanged partition as published",
    );
    expect(describeChange({ action: 'budget-pause', outcome: 'applied', details: { why: 'the retries budget is spent' } })).toBe('the retries budget is spent');
    expect(describeChange({ action: 'approve', outcome: 'refused', details: { code: 'self_approval', why: 'alice started it' } })).toBe('refused: alice started it');
    expect(describeChange({ action: 'pause', outcome: 'applied', details: { paused: true, previous: false } })).toBe('paused: no new partitions start');
    expect(describeChange({ action: 'pause', outcome: 'applied', details: { paused: true, previous: true } })).toBe('was paused already: no change');
    expect(describeChange({ action: 'resume', outcome: 'applied', details: { paused: false, previous: true } })).toBe('resumed: new partitions start again');
    expect(describeChange({ action: 'resume', outcome: 'applied', details: { paused: false, previous: false } })).toBe('was not paused: no change');
    expect(describeChange({ action: 'rollback', outcome: 'applied', details: { force: false, policyHash: null } })).toBe('rollback asked: each partition the backfill changed back to its version before it, unless changed since');
    expect(describeChange({ action: 'rollback', outcome: 'applied', details: { force: true, policyHash: 'sha256:0123456789abcdef0123' } })).toBe(
      'rollback asked: each partition the backfill changed back to its version before it, even one changed since (--force), policy sha256:0123456789ab…',
    );
    expect(describeChange({ action: 'discard', outcome: 'applied', details: { runKey: 'r1', policyHash: null } })).toBe('discard asked: every version the ended run staged (a second finds nothing left)');
  });

  it('renders backfill audit as a table of who, when, why and what, the same with colours forced or not', () => {
    const trail = AuditTrail.empty();
    const entries = [
      trail.record(entry({ action: 'start', identity: 'alice@example.com', verified: true, reason: 'finance restated Q1', details: { partitions: 90 } })),
      trail.record(entry({ action: 'approve', identity: 'alice@example.com', verified: true, reason: 'mine', outcome: 'refused', details: { code: 'self_approval', why: 'alice started it' } })),
      trail.record(entry({ action: 'set-rate', reason: null, details: { rate: 5, previous: 20 } })),
    ];
    const text = stripVTControlCharacters(renderAudit('q1', entries));
    const lines = text.split('\n');
    expect(lines[0]).toBe('q1: 3 actions');
    expect(text).toContain('2024-05-01 12:00:00');
    // Cells wrap at their column's width: look for what fits on one line.
    const row = (seq: number) => lines.find((l) => l.split('│')[1]?.trim() === String(seq))!;
    expect(row(2)).toMatch(/│ approve .*│ alice@example.com .*│ mine .*│ refused: alice started it/);
    expect(text).toContain('(refused)');
    expect(text).toContain('(verified');
    expect(row(3)).toMatch(/│ set-rate .*│ bob@laptop .*│ – .*│ rate 20\/s → 5\/s/);
    expect(stripVTControlCharacters(renderAudit('q1', []))).toMatch(/^q1: no actions recorded/);
  });

  it('shows every action name whole, refused or not, however long the reason', () => {
    const trail = AuditTrail.empty();
    const actions: AuditEntry['action'][] = [...ACTIONS, 'budget-pause', 'replace-spec'];
    const reason = `warehouse maintenance ${'x'.repeat(60)} ${'and more words '.repeat(8)}`;
    const entries = actions.flatMap((action) => [
      trail.record(entry({ action, reason })),
      trail.record(entry({ action, reason, outcome: 'refused', details: { code: 'policy', why: 'no' } })),
    ]);
    const lines = stripVTControlCharacters(renderAudit('q1', entries)).split('\n');
    const cells = (line: string) => line.split('│').map((cell) => cell.trim());
    const firstLine = (seq: number) => cells(lines.find((l) => cells(l)[1] === String(seq))!);
    entries.forEach((e) => expect(firstLine(e.seq)[3]).toBe(e.action));
    expect(lines.filter((l) => cells(l)[3] === '(refused)')).toHaveLength(actions.length);
    expect(lines.some((l) => cells(l)[3]?.includes('…'))).toBe(false);
    // The reason wraps, and a word longer than its column is cut there, not the action.
    expect(lines.some((l) => cells(l)[5] === 'warehouse maintenance')).toBe(true);
    expect(lines.some((l) => /^x+…$/.test(cells(l)[5] ?? ''))).toBe(true);
  });
});

describe('auditOfHistory (backfill audit reads the history)', () => {
  const memo = (value: unknown) => ({ workflowPropertiesModifiedEventAttributes: { upsertedMemo: { fields: { audit: { data: Buffer.from(JSON.stringify(value)) } } } } });
  const decode = (payload: { data?: Uint8Array | null }) => JSON.parse(Buffer.from(payload.data!).toString()) as unknown;

  it('reads every audit memo in order and skips what is not an entry', () => {
    const events = [memo({ seq: 1, ...entry({ action: 'start' }) }), memo(null), memo('junk'), { workflowTaskCompletedEventAttributes: {} }, memo({ seq: 2, ...entry() })];
    expect(auditOfHistory(events, decode).map((e) => [e.seq, e.action])).toEqual([
      [1, 'start'],
      [2, 'pause'],
    ]);
  });

  it('completes an unannounced cancel with the requester and reason the server recorded', () => {
    const events = [
      memo({ seq: 1, ...entry({ action: 'start' }) }),
      { workflowExecutionCancelRequestedEventAttributes: { identity: '4242@ops-host', cause: 'cleanup' } },
      memo({ seq: 2, ...entry({ action: 'cancel', identity: 'unknown (cancelled without backfill cancel)', reason: null, details: { requested: true, announced: false } }) }),
    ];
    expect(auditOfHistory(events, decode)[1]).toMatchObject({ action: 'cancel', identity: '4242@ops-host (from the cancellation request)', reason: 'cleanup' });
    // An announced cancel (backfill cancel said who and why) is left as it was.
    const announced = [memo({ seq: 1, ...entry({ action: 'cancel', details: { requested: true } }) }), { workflowExecutionCancelRequestedEventAttributes: { identity: 'cli', cause: 'x' } }];
    expect(auditOfHistory(announced, decode)[0]).toMatchObject({ identity: 'bob@laptop', reason: 'warehouse maintenance' });
  });

  it('records a termination (the workflow cannot) with the terminator and reason the server recorded', () => {
    const at = Date.UTC(2025, 5, 1, 9, 30);
    const terminated = (identity: string, reason: string) => ({ eventTime: msToTs(at), workflowExecutionTerminatedEventAttributes: { identity, reason } });
    const events = [memo({ seq: 1, ...entry({ action: 'start' }) }), terminated('ops@web-ui', 'stuck, killing it')];
    const [, entry2] = auditOfHistory(events, decode);
    expect(entry2).toMatchObject({ seq: 2, at, action: 'terminate', identity: 'ops@web-ui (from the termination)', verified: false, reason: 'stuck, killing it', outcome: 'applied' });
    expect(describeChange(entry2!)).toMatch(/^terminated through Temporal: the run ended without its cleanup/);
    expect(auditOfHistory([terminated('', '')], decode)[0]).toMatchObject({ identity: UNKNOWN_IDENTITY, reason: null });
  });
});

/** A history event as the server's protobuf gives it (event ids are Longs). */
const event = (fields: Record<string, unknown>) => proto.temporal.api.history.v1.HistoryEvent.fromObject(fields);

describe('auditOfHistory: a decision that failed for good', () => {
  const memo = (value: unknown) => ({ workflowPropertiesModifiedEventAttributes: { upsertedMemo: { fields: { audit: { data: Buffer.from(JSON.stringify(value)) } } } } });
  const decode = (payload: { data?: Uint8Array | null }) => JSON.parse(Buffer.from(payload.data!).toString()) as unknown;
  const failedAt = Date.UTC(2025, 5, 1, 10, 0);
  const scheduled = (eventId: number, name: string) => event({ eventId, activityTaskScheduledEventAttributes: { activityType: { name } } });
  const started = (scheduledEventId: number, attempt: number) => event({ activityTaskStartedEventAttributes: { scheduledEventId, attempt } });
  const failed = (scheduledEventId: number, message: string, type: string) =>
    event({ eventTime: msToTs(failedAt), activityTaskFailedEventAttributes: { scheduledEventId, failure: { message, applicationFailureInfo: { type, nonRetryable: true } } } });
  const asked = memo({ seq: 2, ...entry({ action: 'publish', identity: 'alice@laptop', reason: 'diff reviewed', details: {} }) });

  it('follows the publish it failed with when, why, after how many attempts, and who asked', () => {
    const leased = 'dataset orders is leased to run r9 of backfill other';
    const events = [memo({ seq: 1, ...entry({ action: 'start' }) }), asked, scheduled(10, 'publishStaged'), started(10, 1), failed(10, leased, 'StaleRun')];
    const [, ask, failure] = auditOfHistory(events, decode);
    expect(describeChange(ask!)).toMatch(/^publish asked/);
    expect(failure).toMatchObject({ seq: 3, at: failedAt, action: 'publish', outcome: 'failed', identity: 'alice@laptop', reason: 'diff reviewed', details: { why: leased, attempts: 1, failureType: 'StaleRun' } });
    expect(describeChange(failure!)).toBe(`the publish failed after 1 attempt (StaleRun): ${leased}; nothing was published: the backfill is staged again, waiting for publish or discard`);
    // A failed entry changes no limit, and no control's "unchanged since" reads it as applied.
    expect(isLimitChange(failure!)).toBe(false);
    expect(stripVTControlCharacters(renderAudit('bf', auditOfHistory(events, decode)))).toContain('(failed)');
  });

  it("a canary's approval that failed, a timeout, and an activity that is no decision", () => {
    const canary = memo({ seq: 2, ...entry({ action: 'publish', details: { canary: true, auto: false } }) });
    const timedOut = event({ eventTime: msToTs(failedAt), activityTaskTimedOutEventAttributes: { scheduledEventId: 10, failure: { message: 'activity StartToClose timeout' } } });
    const [, , failure] = auditOfHistory([memo({ seq: 1, ...entry({ action: 'start' }) }), canary, scheduled(10, 'publishStaged'), started(10, 10), timedOut], decode);
    expect(failure).toMatchObject({ outcome: 'failed', details: { canary: true, timedOut: true, attempts: 10 } });
    expect(describeChange(failure!)).toBe("the canary's approval did not finish in time after 10 attempts: activity StartToClose timeout; whether it published anything is not known (doing it again is safe): the canary waits for approve or discard again");
    // A partition's activity that fails is the partition's failure, not an operator's decision.
    expect(auditOfHistory([asked, scheduled(10, 'runPartition'), failed(10, 'boom', 'SqlError')], decode)).toHaveLength(1);
  });
});

describe("auditOfHistory: how a rollback ended (its workflow records only that it was asked)", () => {
  const memo = (value: unknown) => ({ workflowPropertiesModifiedEventAttributes: { upsertedMemo: { fields: { audit: { data: Buffer.from(JSON.stringify(value)) } } } } });
  const payload = (value: unknown) => ({ payloads: [{ data: Buffer.from(JSON.stringify(value)) }] });
  const decode = (p: { data?: Uint8Array | null }) => JSON.parse(Buffer.from(p.data!).toString()) as unknown;
  const endedAt = Date.UTC(2025, 5, 2, 8, 0);
  const startedAs = (workflowType: string, input: unknown = { backfillId: 'q1', audit: { identity: 'carol@ops', reason: 'bad SQL' } }) =>
    event({ workflowExecutionStartedEventAttributes: { workflowType: { name: workflowType }, input: payload(input) } });
  const asked = memo({ seq: 1, ...entry({ action: 'rollback', identity: 'carol@ops', reason: 'bad SQL', details: { force: false, policyHash: null } }) });
  const completed = (summary: unknown) => event({ eventTime: msToTs(endedAt), workflowExecutionCompletedEventAttributes: { result: payload(summary) } });
  const summary = { backfillId: 'q1', rollbackId: 'r1', force: true, restored: 40, removed: 10, alreadyRestored: 0, leftAlone: 0, forced: 5, undone: 3, nodes: [], changedBy: {}, leftAloneExamples: [], runs: 1 };

  it('follows the asked entry with what it did: the summary counts, those at 0 left out', () => {
    const [ask, done] = auditOfHistory([startedAs('rollbackWorkflow'), asked, completed(summary)], decode);
    expect(describeChange(ask!)).toMatch(/^rollback asked/);
    expect(done).toMatchObject({ seq: 2, at: endedAt, action: 'rollback', outcome: 'applied', identity: 'carol@ops', reason: 'bad SQL', details: { ended: true, restored: 40, removed: 10, alreadyRestored: 0, leftAlone: 0, forced: 5, undone: 3 } });
    expect(describeChange(done!)).toBe(
      "rollback done: 40 restored to the version before it, 10 removed (the backfill made them), 5 of them restored over a later backfill (--force), 3 undone before by another backfill's rollback",
    );
    expect(isLimitChange(done!)).toBe(false);
    const nothing = auditOfHistory([startedAs('rollbackWorkflow'), asked, completed({ ...summary, restored: 0, removed: 0, forced: 0, undone: 0 })], decode)[1]!;
    expect(describeChange(nothing)).toBe('rollback done: nothing of the backfill is published, nothing changed');
  });

  it('a rollback that failed for good says why and what it leaves; one the policy refused says nothing more', () => {
    const failed = event({ eventTime: msToTs(endedAt), workflowExecutionFailedEventAttributes: { failure: { message: 'Activity task failed', cause: { message: 'checksum of orders 2024-01-02 v3 differs', applicationFailureInfo: { type: 'ChecksumMismatch' } } } } });
    const [, failure] = auditOfHistory([startedAs('rollbackWorkflow'), asked, failed], decode);
    expect(failure).toMatchObject({ action: 'rollback', outcome: 'failed', identity: 'carol@ops', details: { why: 'Activity task failed: checksum of orders 2024-01-02 v3 differs', failureType: 'ChecksumMismatch' } });
    expect(describeChange(failure!)).toBe(
      "the rollback failed (ChecksumMismatch): Activity task failed: checksum of orders 2024-01-02 v3 differs; what it restored before it stopped stays restored, the rest is as it was: 'backfill rollback' again restores the rest",
    );
    const refused = memo({ seq: 1, ...entry({ action: 'rollback', outcome: 'refused', details: { why: 'a reason is required' } }) });
    expect(auditOfHistory([startedAs('rollbackWorkflow'), refused, failed], decode).map((e) => e.outcome)).toEqual(['refused']);
  });

  it("a rollback's workflow terminated through Temporal is said apart: it leases nothing, and what it restored stays", () => {
    const terminated = event({ eventTime: msToTs(endedAt), workflowExecutionTerminatedEventAttributes: { identity: 'ops@web-ui', reason: 'stuck' } });
    const [, ended] = auditOfHistory([startedAs('rollbackWorkflow'), asked, terminated], decode);
    expect(ended).toMatchObject({ action: 'terminate', details: { of: 'rollback' } });
    expect(describeChange(ended!)).toMatch(/^the rollback's workflow terminated through Temporal: what it restored before stays restored/);
    expect(auditOfHistory([startedAs('backfillWorkflow'), terminated], decode)[0]!.details).toEqual({});
  });

  it('in a run continued as new, who asked comes from its input; the end of any other workflow is no rollback', () => {
    const [done] = auditOfHistory([startedAs('rollbackWorkflow'), completed(summary)], decode);
    expect(done).toMatchObject({ action: 'rollback', identity: 'carol@ops', reason: 'bad SQL', outcome: 'applied' });
    expect(auditOfHistory([startedAs('backfillWorkflow'), memo({ seq: 1, ...entry({ action: 'start' }) }), completed({ state: 'completed' })], decode).map((e) => e.action)).toEqual(['start']);
  });
});

describe("auditOfHistory: the sender of a control that named no one (Temporal's CLI)", () => {
  const memo = (value: unknown) => ({ workflowPropertiesModifiedEventAttributes: { upsertedMemo: { fields: { audit: { data: Buffer.from(JSON.stringify(value)) } } } } });
  const decode = (payload: { data?: Uint8Array | null }) => JSON.parse(Buffer.from(payload.data!).toString()) as unknown;
  const signaled = (eventId: number, signalName: string, identity: string) => event({ eventId, workflowExecutionSignaledEventAttributes: { signalName, identity } });
  const task = (startedEventId: number) => [event({ eventId: startedEventId, workflowTaskStartedEventAttributes: {} }), event({ eventId: startedEventId + 1, workflowTaskCompletedEventAttributes: { startedEventId } })];
  const unknown = (seq: number, action: AuditEntry['action']) => memo({ seq, ...entry({ action, identity: UNKNOWN_IDENTITY, reason: null }) });

  it('takes the identity the server recorded of the signal the task handled', () => {
    const events = [signaled(5, 'nodeReport', 'worker@host'), signaled(6, 'pause', 'temporal-cli:ops@bastion'), signaled(7, 'setRate', 'temporal-cli:eve@laptop'), ...task(9), unknown(1, 'set-rate'), unknown(2, 'pause')];
    expect(auditOfHistory(events, decode).map((e) => e.identity)).toEqual([
      'temporal-cli:eve@laptop (from the signal: its Temporal client identity)',
      'temporal-cli:ops@bastion (from the signal: its Temporal client identity)',
    ]);
    expect(describeActor(auditOfHistory(events, decode)[1]!)).toBe('temporal-cli:ops@bastion (from the signal: its Temporal client identity) (declared)');
  });

  it('keeps a declared identity, and matches no signal of another task or one that arrived while the task ran', () => {
    const declared = memo({ seq: 1, ...entry({ action: 'pause', identity: 'bob@laptop' }) });
    expect(auditOfHistory([signaled(5, 'pause', 'temporal-cli:x@y'), ...task(9), declared], decode)[0]!.identity).toBe('bob@laptop');
    // Handled by an earlier task that recorded nothing of it (a refused signal past the recorded few).
    expect(auditOfHistory([signaled(5, 'pause', 'temporal-cli:x@y'), ...task(9), ...task(12), unknown(1, 'pause')], decode)[0]!.identity).toBe(UNKNOWN_IDENTITY);
    // Arrived after the task started: the next task handles it.
    const during = [event({ eventId: 9, workflowTaskStartedEventAttributes: {} }), signaled(10, 'pause', 'temporal-cli:x@y'), event({ eventId: 11, workflowTaskCompletedEventAttributes: { startedEventId: 9 } })];
    expect(auditOfHistory([...during, unknown(1, 'pause')], decode)[0]!.identity).toBe(UNKNOWN_IDENTITY);
    // A signal sent with no identity at all stays unknown.
    expect(auditOfHistory([signaled(5, 'pause', ''), ...task(9), unknown(1, 'pause')], decode)[0]!.identity).toBe(UNKNOWN_IDENTITY);
  });

  it("takes an update's sender from the request the task accepted", () => {
    const accepted = event({ eventId: 11, workflowExecutionUpdateAcceptedEventAttributes: { acceptedRequest: { meta: { identity: 'temporal-cli:ops@bastion' }, input: { name: 'setConcurrency' } } } });
    expect(auditOfHistory([...task(9), accepted, unknown(1, 'set-concurrency')], decode)[0]!.identity).toBe('temporal-cli:ops@bastion (from the update: its Temporal client identity)');
  });
});

describe('unchangedSince', () => {
  const at = (seq: number, fields: Partial<AuditEntry>): AuditEntry => ({ ...entry(fields), seq, at: seq * 1000 });
  it('names the newest change of the value, of any action, and skips controls that changed nothing', () => {
    const entries = [
      at(1, { action: 'pause', identity: 'alice', details: { paused: true, previous: false } }),
      at(2, { action: 'pause', identity: 'bob', details: { paused: true, previous: true } }),
    ];
    expect(unchangedSince(entries, 'paused', true, { node: null })).toMatchObject({ since: 1000, by: 'alice (declared)' });
    const rates = [
      at(1, { action: 'set-rate', identity: 'alice', details: { rate: 5, previous: 4 } }),
      at(2, { action: 'set-rate', identity: 'bob', details: { rate: 10, previous: 5 } }),
    ];
    // Back at 5 by a change the trail does not hold (a policy's cap): not alice's.
    expect(unchangedSince(rates, 'rate', 5, { node: null })).toEqual({ since: null, by: null, reason: null });
  });
  it('tells nothing when a change the trail does not hold came after (a new run starts unpaused)', () => {
    const entries = [
      at(1, { action: 'pause', identity: 'alice', details: { paused: true, previous: false } }),
      at(2, { action: 'resume', identity: 'bob', details: { paused: false, previous: true } }),
      at(3, { action: 'pause', identity: 'carol', details: { paused: true, previous: false } }),
    ];
    // The run ended paused by carol; the next starts unpaused: bob's resume is not why.
    expect(unchangedSince(entries, 'paused', false, { node: null })).toEqual({ since: null, by: null, reason: null });
    expect(unchangedSince(entries, 'paused', true, { node: null })).toMatchObject({ since: 3000, by: 'carol (declared)' });
  });
  it("looks at the node's own entries", () => {
    const entries = [at(1, { action: 'set-rate', identity: 'alice', details: { rate: 5, previous: 4, node: 'a' } }), at(2, { action: 'set-rate', identity: 'bob', details: { rate: 9, previous: 4, node: 'b' } })];
    expect(unchangedSince(entries, 'rate', 5, { node: 'a' })).toMatchObject({ by: 'alice (declared)' });
    expect(unchangedSince(entries, 'rate', 5, { node: null })).toEqual({ since: null, by: null, reason: null });
  });
});
