/**
 * Errors a transform can throw to tell the orchestrator what kind of failure it is.
 * Anything else is treated as transient and retried with backoff up to the node's limit.
 */

/** The downstream system asked us to slow down: the node lowers its rate and the partition runs again later. */
export class ThrottledError extends Error {
  override readonly name = 'ThrottledError';
}

/** A failure that retrying will not heal (bad input, a bug): the partition fails at once. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/*
 * By name as well as by class: a transforms module imports the error classes from its own
 * project's copy of this package, which need not be the copy the worker runs (a global install,
 * npx's cache), and classes of two copies are not `instanceof` each other.
 */

export function isThrottled(error: unknown): error is Error {
  return error instanceof ThrottledError || (error instanceof Error && error.name === 'ThrottledError');
}

export function isNonRetryable(error: unknown): error is Error {
  return error instanceof NonRetryableError || (error instanceof Error && error.name === 'NonRetryableError');
}

/**
 * A Temporal ApplicationFailure: this worker's (instanceof, which the SDK makes work across its
 * recent copies) or, by name and shape, an older copy's that a transforms module brought.
 */
export function isApplicationFailure(error: unknown): error is Error & { type?: string | null; nonRetryable?: boolean | null } {
  if (!(error instanceof Error) || error.name !== 'ApplicationFailure') return false;
  const { type, nonRetryable } = error as { type?: unknown; nonRetryable?: unknown };
  return (type === undefined || type === null || typeof type === 'string') && (nonRetryable === undefined || nonRetryable === null || typeof nonRetryable === 'boolean');
}
