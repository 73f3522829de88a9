/**
 * A timer for waits an operator sets (`wait --timeout 30d`). Node clamps a `setTimeout` delay
 * above 2^31-1 ms (about 24.8 days) to 1 ms, so a longer wait would fire at once; this one
 * re-arms in steps of at most that until its deadline.
 */

/** The longest delay `setTimeout` honours, in milliseconds. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Calls `fire` once `ms` milliseconds have passed, however long; returns a function that cancels it. */
export function setLongTimeout(fire: () => void, ms: number): () => void {
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = (delay: number) => {
    timer = setTimeout(() => {
      const left = deadline - Date.now();
      if (left > 0) arm(left);
      else fire();
    }, Math.min(Math.max(delay, 0), MAX_TIMER_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
