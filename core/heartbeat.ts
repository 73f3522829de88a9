/**
 * Heartbeats of the activities that do not count their own progress (the warehouse's steps, the
 * governance activities, OpenLineage events): a heartbeat timeout finds out an attempt nobody
 * works on (a task dropped by a worker stopped in the instant it was handed it, or a worker that
 * died) long before their start-to-close timeout (a minute) would. A staged publish or discard,
 * which may run for minutes, keeps its ten-minute timeout and none of these (docs/deploying.md).
 *
 * 30 s, as a partition's default: only the worker's main thread can stop the heartbeats (SQLite
 * runs on a thread of its own: an 18 s statement there left the main thread's timers at most 75 ms
 * late; PostgreSQL and DuckDB do not block it), and a main thread stalled that long already times
 * out that worker's partitions. Heartbeating every third of it (the SDK sends at most every 0.8
 * of it), a stall of up to about 20 s times out nothing.
 */
export const ACTIVITY_HEARTBEAT_TIMEOUT = '30s';

/** How often an activity heartbeats for a heartbeat timeout of `timeoutMs`: a third of it, at least every 200 ms. */
export function heartbeatEveryMs(timeoutMs: number): number {
  return Math.max(200, Math.floor(timeoutMs / 3));
}
