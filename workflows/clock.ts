/**
 * The workflow's clock. Inside a workflow the Temporal SDK makes `Date` deterministic: it
 * reads the start time of the current workflow task, recorded in the history, so a replay
 * sees exactly what the first run saw. This module is the one place workflow code reads it.
 */
export function workflowTime(): number {
  return Date.now();
}
