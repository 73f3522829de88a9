/**
 * A control sent as a signal (`temporal workflow signal`, or any client) that the backfill
 * refuses: a malformed payload, a rate over the policy's cap, a reason the `reasons` rule wants
 * and the signal lacks. A signal has no reply, so its sender never hears of the refusal; the
 * audit trail records it, so that an auditor sees that someone tried.
 *
 * Anyone who can signal the workflow can send thousands of them. The first
 * REFUSED_SIGNALS_KEPT refused signals of a backfill (all its runs: the count goes on in the
 * audit trail's carried state) are recorded one by one; past them, only those whose count past
 * the cap is a power of two (the 11th, 12th, 14th, 18th, 26th, ...), each saying how many went
 * unrecorded before it. A flood of n refused signals adds about log2(n) entries to the history
 * (one memo upsert each); the trail the state keeps drops them (the newest too) before any other
 * entry, so they never push operators' actions out of it (`AuditTrail.record`).
 * Each entry's text is cut short (REFUSED_TEXT): it takes its share of the state's trail, not all of it.
 */
import { MAX_IDENTITY, REFUSED_SIGNALS_KEPT, UNKNOWN_IDENTITY, clipText, parseMeta, type AuditEntry, type ControlMeta } from './audit.ts';
import type { Action } from './policy.ts';
import { valueText } from './value-text.ts';

/** The most characters a refused signal's entry keeps of its reason, its refusal, and what it sent. */
export const REFUSED_TEXT = { reason: 200, why: 500, sent: 200 } as const;

/**
 * The control signals (workflows/definitions.ts): the action each is recorded as, and where its
 * `{ reason, identity }` is among its arguments (the last it declares).
 */
export const CONTROL_SIGNALS = {
  pause: { action: 'pause', metaAt: 0 },
  resume: { action: 'resume', metaAt: 0 },
  setRate: { action: 'set-rate', metaAt: 2 },
  setConcurrency: { action: 'set-concurrency', metaAt: 2 },
  retryFailed: { action: 'retry', metaAt: 1 },
  setBudget: { action: 'set-budget', metaAt: 1 },
  approve: { action: 'approve', metaAt: 1 },
} as const satisfies Record<string, { action: Action; metaAt: number }>;

export type ControlSignal = keyof typeof CONTROL_SIGNALS;

/** A refused signal: its name, its arguments as they came, and the BackfillError's code and message. */
export type RefusedSignal = { signal: ControlSignal; args: readonly unknown[]; code: string; message: string };

/** Whether the `nth` refused signal of a backfill (1, 2, ...) gets an entry of its own. */
export function refusedSignalKept(nth: number): boolean {
  let past = nth - REFUSED_SIGNALS_KEPT;
  if (past <= 0) return true;
  while (past % 2 === 0) past /= 2;
  return past === 1;
}

/** How many of the first `nth` refused signals went unrecorded (refusedSignalKept). */
export function refusedSignalsUnrecorded(nth: number): number {
  let kept = Math.min(nth, REFUSED_SIGNALS_KEPT);
  for (let past = 1; REFUSED_SIGNALS_KEPT + past <= nth; past *= 2) kept++;
  return nth - kept;
}

/**
 * Who sent a refused signal and why, as far as its last argument says so in a well-formed way:
 * an identity only as a control may declare it (text, at most MAX_IDENTITY characters, not
 * reserved: else the entry says it is unknown), and a reason that is text, cut short. The rest of
 * a malformed argument is not kept (the refusal says what was wrong with it).
 */
export function declaredSender(meta: unknown): ControlMeta {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return {};
  const { reason, identity } = meta as Record<string, unknown>;
  const out: ControlMeta = {};
  if (typeof identity === 'string' && identity.length <= MAX_IDENTITY) {
    try {
      const parsed = parseMeta({ identity }).identity;
      if (parsed !== undefined) out.identity = parsed;
    } catch {
      // A reserved identity (policy, canary.auto): the entry says the sender is unknown.
    }
  }
  if (typeof reason === 'string' && reason.trim() !== '') out.reason = clipText(reason.trim(), REFUSED_TEXT.reason);
  return out;
}

/**
 * The audit entry of the `nth` refused signal of a backfill (its action, who declared it, the
 * refusal's code and message, what it sent, cut short), or null when it goes unrecorded.
 */
export function refusedSignalEntry(refused: RefusedSignal, nth: number, at: number): Omit<AuditEntry, 'seq'> | null {
  const { action, metaAt } = CONTROL_SIGNALS[refused.signal];
  const sender = declaredSender(refused.args[metaAt]);
  return onRefusedSchedule(
    {
      at,
      action,
      identity: sender.identity ?? UNKNOWN_IDENTITY,
      verified: false,
      reason: sender.reason ?? null,
      outcome: 'refused',
      details: {
        signal: refused.signal,
        code: refused.code,
        why: clipText(refused.message, REFUSED_TEXT.why),
        sent: clipText(sentText(refused.args.slice(0, metaAt)), REFUSED_TEXT.sent),
      },
    },
    nth,
  );
}

/**
 * `entry` as the `nth` refused signal of a backfill (numbered, and saying how many went
 * unrecorded before it), or null when it goes unrecorded (refusedSignalKept). Numbered, it ranks
 * with refused signals when the trail the state keeps is full (`AuditTrail.dropOldest`).
 */
export function onRefusedSchedule(entry: Omit<AuditEntry, 'seq'>, nth: number): Omit<AuditEntry, 'seq'> | null {
  if (!refusedSignalKept(nth)) return null;
  const unrecorded = refusedSignalsUnrecorded(nth);
  return { ...entry, details: { ...entry.details, refusedSignal: nth, ...(unrecorded > 0 ? { unrecorded } : {}) } };
}

/** A signal's arguments before its `{ reason, identity }`, as JSON (what Temporal's CLI sends as `--input`), without the trailing absent ones. */
function sentText(sent: readonly unknown[]): string {
  const args = [...sent];
  while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
  return args.map((a) => valueText(a, REFUSED_TEXT.sent)).join(' ');
}
