/**
 * A control signal the backfill refuses (core/refused-signals.ts): recorded in the audit trail as
 * refused, with who declared it and why it was refused, cut short; a flood of them bounded.
 */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AUDIT_KEEP, AuditTrail, MAX_IDENTITY, REFUSED_SIGNALS_KEPT, UNKNOWN_IDENTITY, describeChange, type AuditEntry } from '../../core/audit.ts';
import { BackfillCoordinator } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { Governance } from '../../core/governance.ts';
import { expandPlan } from '../../core/plan.ts';
import type { PolicyInput } from '../../core/policy.ts';
import { REFUSED_TEXT, declaredSender, refusedSignalEntry, refusedSignalKept, refusedSignalsUnrecorded, type ControlSignal, type RefusedSignal } from '../../core/refused-signals.ts';
import { resolveSpec } from '../../core/spec.ts';
import { governedCoordinator } from './governed-coordinator.ts';
import { renderAudit } from '../../client/render-audit.ts';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const spec = resolveSpec({ name: 'g', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' }, nodes: [{ id: 'a', transform: 'noop' }] });
const plan = expandPlan(spec);

/** A running backfill under a policy that caps the rate at 100 and wants a reason of 5 characters for a pause. */
function governed(audit?: Governance['audit']): BackfillCoordinator {
  const policy = { version: 1, caps: { backfill: { rate: 100 } }, reasons: { required: ['pause'], minLength: 5 } } satisfies PolicyInput;
  return governedCoordinator(spec, plan, policy, { backfillId: 'g', now: () => NOW, ...(audit ? { audit } : {}) });
}

/** What the workflow's signal handler does: apply, and on a BackfillError record the refusal. */
function signal(c: BackfillCoordinator, name: ControlSignal, args: unknown[], apply: () => unknown): void {
  try {
    apply();
  } catch (error) {
    if (!(error instanceof BackfillError)) throw error;
    c.refuseSignal({ signal: name, args, code: error.code, message: error.message });
  }
}

const refused = (fields: Partial<RefusedSignal> = {}): RefusedSignal => ({ signal: 'setRate', args: [500, null, { identity: 'mallory@host', reason: 'faster' }], code: 'policy_violation', message: 'refused by the policy: rate 500 is above the cap 100', ...fields });

describe('which refused signals are recorded', () => {
  it(`the first ${REFUSED_SIGNALS_KEPT} one by one, then those whose count past the cap is a power of two`, () => {
    const kept = Array.from({ length: 200 }, (_, i) => i + 1).filter(refusedSignalKept);
    expect(kept).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 18, 26, 42, 74, 138]);
    expect(kept.map(refusedSignalsUnrecorded)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 11, 26, 57, 120]);
    // What went unrecorded is what was not kept, counted to every nth.
    for (let nth = 1; nth <= 200; nth++) expect(refusedSignalsUnrecorded(nth)).toBe(nth - kept.filter((k) => k <= nth).length);
  });

  it('a flood of a million adds about log2 of it: 30 entries in all', () => {
    let entries = 0;
    for (let nth = 1; nth <= 1_000_000; nth++) if (refusedSignalKept(nth)) entries++;
    expect(entries).toBe(REFUSED_SIGNALS_KEPT + 20);
  });
});

describe("the trail the state keeps", () => {
  it("drops refused signals' entries before operators' actions, however large they are", () => {
    const trail = AuditTrail.empty();
    const operator = (action: 'pause' | 'resume', at: number) => trail.record({ at, action, identity: 'ops@example.com', verified: false, reason: 'on call', outcome: 'applied', details: {} });
    operator('pause', 1);
    operator('resume', 2);
    // Control characters take six bytes each in JSON: ten such entries fill the state's budget on their own.
    const junk = '\u0001'.repeat(1_000);
    for (let nth = 1; nth <= REFUSED_SIGNALS_KEPT; nth++) {
      trail.record(refusedSignalEntry({ signal: 'setBudget', args: [junk, { reason: junk }], code: 'invalid_argument', message: junk }, nth, 10 + nth)!);
    }
    const kept = trail.recent();
    expect(kept.filter((e) => e.outcome === 'applied').map((e) => e.action)).toEqual(['pause', 'resume']);
    expect(kept.length).toBeLessThan(REFUSED_SIGNALS_KEPT + 2);
    // The newest refused signal stays: the history has them all, the state the newest.
    expect(kept.at(-1)!.details.refusedSignal).toBe(REFUSED_SIGNALS_KEPT);
  });

  it("keeps operators' entries that fill it and not a refused signal's, even as the newest (found by the model test)", () => {
    const operator = (trail: AuditTrail, reason: string) => trail.record({ at: 1, action: 'set-rate', identity: 'ops@example.com', verified: false, reason, outcome: 'applied', details: { rate: 5 } });
    const junk = refusedSignalEntry({ signal: 'setRate', args: ['\u0001'.repeat(1_000), null, { reason: '\u0001'.repeat(1_000) }], code: 'invalid_argument', message: 'rate must be a number' }, 1, 2)!;
    // Two of the longest reasons a control may give, of characters JSON writes in six bytes: 24 KB of operators' entries, all but a few bytes.
    const bytes = AuditTrail.empty();
    operator(bytes, 'start');
    for (let i = 0; i < 2; i++) operator(bytes, '\u0001'.repeat(1_990));
    const before = bytes.recent().map((e) => e.seq);
    bytes.record(junk);
    expect(bytes.recent().map((e) => e.seq)).toEqual(before);
    // By count: a refused signal that arrives at a full trail leaves it as it was; the next operator's entry pushes out the oldest, as ever.
    const full = AuditTrail.empty();
    for (let i = 0; i < AUDIT_KEEP; i++) operator(full, `change ${i}`);
    full.record(junk);
    expect(full.recent().map((e) => e.reason)).toEqual(Array.from({ length: AUDIT_KEEP }, (_, i) => `change ${i}`));
    expect(full.total).toBe(AUDIT_KEEP + 1);
    operator(full, 'one more');
    expect(full.recent().map((e) => e.reason)).toEqual([...Array.from({ length: AUDIT_KEEP - 1 }, (_, i) => `change ${i + 1}`), 'one more']);
  });
});

describe('declaredSender', () => {
  it('keeps an identity only as a control may declare it, and a reason cut short', () => {
    expect(declaredSender({ identity: ' bob@laptop ', reason: ' source fixed ' })).toEqual({ identity: 'bob@laptop', reason: 'source fixed' });
    // The reason too long for a control: the identity is still well-formed, the reason kept as its beginning.
    expect(declaredSender({ identity: 'bob', reason: 'r'.repeat(5000) })).toEqual({ identity: 'bob', reason: `${'r'.repeat(REFUSED_TEXT.reason)}…` });
    expect(declaredSender({ identity: 'i'.repeat(MAX_IDENTITY + 1) })).toEqual({});
    expect(declaredSender({ identity: 'policy' })).toEqual({});
    expect(declaredSender({ identity: 'canary.auto', admin: true })).toEqual({});
    expect(declaredSender({ identity: 42, reason: {} })).toEqual({});
    expect(declaredSender({ identity: '  ' })).toEqual({});
    for (const junk of [undefined, null, 'bob', ['bob'], 7]) expect(declaredSender(junk)).toEqual({});
  });
});

describe('refusedSignalEntry', () => {
  it('records the action, the signal, what it sent, the refusal and the sender', () => {
    expect(refusedSignalEntry(refused(), 1, NOW)).toEqual({
      at: NOW,
      action: 'set-rate',
      identity: 'mallory@host',
      verified: false,
      reason: 'faster',
      outcome: 'refused',
      details: { signal: 'setRate', code: 'policy_violation', why: 'refused by the policy: rate 500 is above the cap 100', sent: '500 null', refusedSignal: 1 },
    });
    // A pause's only argument is its { reason, identity }: it sent nothing else.
    expect(refusedSignalEntry(refused({ signal: 'pause', args: ['junk'] }), 2, NOW)).toMatchObject({ action: 'pause', identity: UNKNOWN_IDENTITY, reason: null, details: { sent: '' } });
    expect(refusedSignalEntry(refused({ signal: 'retryFailed', args: [] }), 3, NOW)).toMatchObject({ action: 'retry', details: { signal: 'retryFailed', sent: '' } });
  });

  it('cuts what it keeps short, whatever the sender sent', () => {
    const entry = refusedSignalEntry(refused({ signal: 'setBudget', args: [{ budget: 'x'.repeat(100_000) }, { reason: 'y'.repeat(100_000) }], message: 'z'.repeat(100_000) }), 1, NOW)!;
    expect(entry.reason).toHaveLength(REFUSED_TEXT.reason + 1);
    expect(entry.details.why).toHaveLength(REFUSED_TEXT.why + 1);
    expect(entry.details.sent).toHaveLength(REFUSED_TEXT.sent + 1);
    expect(JSON.stringify(entry).length).toBeLessThan(1200);
  });

  it('past the cap, says how many went unrecorded; unrecorded ones have no entry', () => {
    expect(refusedSignalEntry(refused(), 13, NOW)).toBeNull();
    expect(refusedSignalEntry(refused(), 14, NOW)?.details).toMatchObject({ refusedSignal: 14, unrecorded: 1 });
  });
});

describe('BackfillCoordinator.refuseSignal', () => {
  it('records a refused signal in the audit trail, and a valid one still applies', () => {
    const c = governed();
    c.takeAudit();
    signal(c, 'setRate', [500, null, { identity: 'mallory@host' }], () => c.setRate(500, null, { identity: 'mallory@host' }));
    signal(c, 'pause', [{ identity: 'bob' }], () => c.setPaused(true, { identity: 'bob' }));
    signal(c, 'setRate', ['fast'], () => c.setRate('fast'));
    signal(c, 'setRate', [50, null, { identity: 'ops', reason: 'slower' }], () => c.setRate(50, null, { identity: 'ops', reason: 'slower' }));
    const written = c.takeAudit();
    expect(written.map((e) => [e.action, e.outcome, e.identity, e.details.code ?? null])).toEqual([
      ['set-rate', 'refused', 'mallory@host', 'policy_violation'],
      ['pause', 'refused', 'bob', 'policy_violation'],
      ['set-rate', 'refused', UNKNOWN_IDENTITY, 'invalid_argument'],
      ['set-rate', 'applied', 'ops', null],
    ]);
    expect(written.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(c.controlState()).toMatchObject({ rate: 50, paused: false });
  });

  it('bounds a flood, and the count goes on across continue-as-new and into a resumed run', () => {
    const c = governed();
    c.takeAudit();
    for (let i = 0; i < 20; i++) signal(c, 'pause', [], () => c.setPaused(true));
    // 1 … 10, then 11, 12, 14 and 18.
    expect(c.takeAudit().map((e) => e.details.refusedSignal)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 18]);
    // Continue-as-new: the governance goes on from its JSON.
    const g = Governance.fromJSON(JSON.parse(JSON.stringify(c.governed!.toJSON())) as ReturnType<Governance['toJSON']>);
    expect(g.toJSON().audit.refusedSignals).toBe(20);
    const next = Array.from({ length: 6 }, () => g.recordRefusedSignal(refused(), NOW));
    expect(next.map((e) => e?.details.refusedSignal ?? null)).toEqual([null, null, null, null, null, 26]);
    expect(next[5]?.details.unrecorded).toBe(11);
    // A resumed run is admitted with the carried trail: still counting.
    const resumed = governed(g.audit);
    signal(resumed, 'pause', [], () => resumed.setPaused(true));
    expect(resumed.governed!.toJSON().audit.refusedSignals).toBe(27);
  });

  it('a carried count that is no count starts again from 0; a trail without refusals carries no count', () => {
    const base = governed().governed!.toJSON();
    expect(base.audit).not.toHaveProperty('refusedSignals');
    for (const junk of [-3, 'many', 1.5, Number.NaN]) {
      const g = Governance.fromJSON({ ...base, audit: { ...base.audit, refusedSignals: junk as number } });
      expect(g.recordRefusedSignal(refused(), NOW)?.details.refusedSignal).toBe(1);
    }
  });

  it('a backfill under no governance records nothing', () => {
    const c = new BackfillCoordinator(plan, { rate: null, concurrency: null }, undefined, { now: () => NOW });
    c.refuseSignal(refused());
    expect(c.takeAudit()).toEqual([]);
  });
});

describe('how a refused signal reads', () => {
  const entry = (nth: number): AuditEntry => ({ seq: nth, ...refusedSignalEntry(refused(), nth, NOW)! });

  it('in `backfill audit`: refused, with the signal, what it sent and why', () => {
    expect(describeChange(entry(1))).toBe('refused: refused by the policy: rate 500 is above the cap 100 (a setRate signal of 500 null, nobody was told)');
    expect(describeChange(entry(26))).toMatch(/11 refused signals before it not recorded: past the first 10, only a few are\)$/);
    const out = stripVTControlCharacters(renderAudit('g', [entry(1)]));
    expect(out).toMatch(/set-rate\s/);
    expect(out).toMatch(/\(refused\)/);
    expect(out).toMatch(/mallory@host \(declared\)/);
    expect(out).toMatch(/a setRate/);
    const approve = { ...entry(1), details: { ...entry(1).details, signal: 'approve' } };
    expect(describeChange(approve)).toContain('(an approve signal of 500 null, nobody was told)');
  });
});
