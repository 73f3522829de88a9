/** Stable codes for errors a user can act on; `--json` prints them as `{ error: { code, message, path? } }`. */
export const ERROR_CODES = [
  'invalid_spec',
  'unknown_node',
  'cycle',
  'invalid_date',
  'mapping_mismatch',
  'unknown_transform',
  'invalid_argument',
  'invalid_policy',
  /** The policy the workers were given refuses a start or a control (the message names the rule and how to comply). */
  'policy_violation',
  /** An approval (or a signed start) that does not hold: a bad or unknown signature, another plan, the starter approving. */
  'approval_refused',
  'not_found',
  'already_exists',
  'dataset_busy',
  'not_running',
  /** The backfill has settled and its node workflows are being told to end: it takes no more changes. */
  'finishing',
  'still_running',
  /** A staged-backfill decision (publish, discard) for a backfill that was not started with --stage. */
  'not_staged',
  /** A canary decision (approve without a signature, discard) for a backfill that has no canary. */
  'not_canary',
  /** A staged backfill still computing its partitions: it takes a decision once it is staged. */
  'not_ready',
  /** The staged versions were published or discarded already (or are being). */
  'already_decided',
  /** `start --rerun` of a backfill whose last run left staged versions undecided: discard them, or resume and decide. */
  'staged_undecided',
  'server_unavailable',
  'timeout',
  'no_worker',
  /** A running backfill's workflow task keeps failing: workers poll, but cannot run its code (status says why). */
  'workflow_task_failing',
  'failed',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** An error that names what is wrong, where (`path`, e.g. `nodes[2].dependsOn[0]`) and the fix. */
export class BackfillError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(message);
    this.name = 'BackfillError';
  }

  toJSON(): { code: ErrorCode; message: string; path?: string } {
    return this.path === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, path: this.path };
  }
}

/** Formats a path of keys and indexes as `nodes[2].dependsOn[0]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`))
    .join('');
}
