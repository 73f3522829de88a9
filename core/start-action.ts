/**
 * What a run's start is, for its audit entry: a `start`, a `resume` (a new run of an ended
 * backfill), or a `retry-failed` (a new run `backfill retry-failed` started to run failures
 * again), with the nodes a new spec (`--spec`) changed. The client says so in the start's
 * input (`StartGovernance.action`, `.resumeRequest`), which anyone who can start a workflow
 * writes: parsed here against the plan's nodes, never recorded as it came.
 */
import { z } from 'zod';
import type { AuditEntry } from './audit.ts';
import { BackfillError, formatPath } from './errors.ts';
import type { StartGovernance } from './protocol.ts';
import { zodProblem } from './zod-errors.ts';

export type StartAction = 'start' | 'resume' | 'retry-failed';

const StartActionSchema = z.strictObject({
  action: z.enum(['start', 'resume'], { message: "must be 'start' or 'resume'" }).optional(),
  resumeRequest: z
    .strictObject({
      retryFailed: z.strictObject({ node: z.string().optional() }).optional(),
      specChanged: z.array(z.string()).optional(),
      // Only which limits were asked for counts: the entry records the run's own (`BackfillCoordinator.recordStart`).
      limits: z.strictObject({ rate: z.number().nullable().optional(), concurrency: z.number().nullable().optional() }).optional(),
    })
    .optional(),
});

/** A backfill-wide limit a new run of an ended backfill may be given (`resume --rate`, `--concurrency`). */
export type RunLimit = 'rate' | 'concurrency';

/**
 * The start's action and what its audit entry says of it beside the start's own details (`node`,
 * `specChanged`); `limitsSet`: the limits the new run was given in place of the ended run's.
 */
export type ParsedStartAction = { action: StartAction; details: AuditEntry['details']; limitsSet?: RunLimit[] };

/**
 * The start's action, from its governance request: `retry-failed` when the request says
 * `retryFailed` (its `action` stays `resume`, which workers from before it record), with the
 * node whose failures run again, the nodes the new spec changed and the limits it was given. Throws `invalid_argument`
 * naming the field when it is not what the client sends, or names a node not in `nodes`, or
 * (`carried: false`, the patch resume-needs-carry) says `resume` of a start without a carry.
 */
export function parseStartAction(request: Pick<StartGovernance, 'action' | 'resumeRequest'>, nodes: readonly string[], options: { carried?: boolean } = {}): ParsedStartAction {
  const refuse = (path: PropertyKey[], message: string): never => {
    const where = formatPath(['governance', ...path]);
    throw new BackfillError('invalid_argument', `the start's ${where} ${message}: start, resume and retry-failed a backfill with the backfill command (or its client library)`, where);
  };
  const parsed = StartActionSchema.safeParse({ action: request.action, resumeRequest: request.resumeRequest });
  if (!parsed.success) {
    const problem = zodProblem(parsed.error);
    return refuse(problem.path, problem.message);
  }
  const { action = 'start', resumeRequest } = parsed.data;
  // A new run of an ended backfill starts from the carry its last run handed on: one without it is a first start, whatever it says.
  if (action === 'resume' && options.carried === false) return refuse(['action'], "is 'resume', but the start has no carry: a new run of an ended backfill starts from the carry its last run handed on");
  if (resumeRequest === undefined) return { action, details: {} };
  if (action !== 'resume') return refuse(['resumeRequest'], "is only for a new run of an ended backfill (action 'resume')");
  const known = new Set(nodes);
  const node = resumeRequest.retryFailed?.node;
  if (node !== undefined && !known.has(node)) refuse(['resumeRequest', 'retryFailed', 'node'], `names node '${node}', which this backfill does not have`);
  const changed = resumeRequest.specChanged ?? [];
  const unknown = changed.find((id) => !known.has(id));
  if (unknown !== undefined) refuse(['resumeRequest', 'specChanged'], `names node '${unknown}', which this backfill does not have`);
  const limitsSet = (['rate', 'concurrency'] as const).filter((key) => resumeRequest.limits?.[key] !== undefined);
  return {
    action: resumeRequest.retryFailed ? 'retry-failed' : 'resume',
    details: {
      ...(node !== undefined ? { node } : {}),
      ...(resumeRequest.specChanged !== undefined ? { specChanged: [...new Set(changed)].join(', ') } : {}),
    },
    ...(limitsSet.length > 0 ? { limitsSet } : {}),
  };
}
