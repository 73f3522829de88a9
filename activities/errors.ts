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
