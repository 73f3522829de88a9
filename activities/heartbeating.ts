/**
 * Heartbeats on a timer while an activity's work runs, for the activities that have no progress
 * of their own to report (core/heartbeat.ts says why they heartbeat).
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { heartbeatEveryMs } from '../core/heartbeat.ts';

type Activity = (...args: never[]) => Promise<unknown>;

/**
 * Runs `work`, heartbeating every third of the activity's heartbeat timeout until it settles.
 * Without a heartbeat timeout (a local activity, an older workflow's options, a direct call)
 * it only runs `work`.
 */
export async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  const ctx = asyncLocalStorage.getStore();
  const timeoutMs = ctx?.info.heartbeatTimeoutMs;
  if (ctx === undefined || timeoutMs === undefined || timeoutMs <= 0) return work();
  const timer = setInterval(() => ctx.heartbeat(), heartbeatEveryMs(timeoutMs));
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Each of `activities`, heartbeating while it runs. */
export function heartbeatingAll<A extends Record<string, Activity>>(activities: A): A {
  return Object.fromEntries(Object.entries(activities).map(([name, activity]) => [name, (...args: never[]) => heartbeating(() => activity(...args))])) as A;
}
