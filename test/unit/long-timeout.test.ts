import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongTimeout } from '../../client/long-timeout.ts';

const DAY_MS = 86_400_000;

describe('setLongTimeout (wait --timeout)', () => {
  // Fake timers clamp a delay above 2^31-1 ms to 1 ms, as Node does.
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fires after a wait longer than setTimeout honours (30 days), not at once', () => {
    const fire = vi.fn();
    setLongTimeout(fire, 30 * DAY_MS);
    vi.advanceTimersByTime(1000);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30 * DAY_MS - MAX_TIMER_MS - 1001);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it('fires a short wait on time, and a cancelled one never', () => {
    const fire = vi.fn();
    setLongTimeout(fire, 500);
    vi.advanceTimersByTime(499);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);

    const cancelled = vi.fn();
    const cancel = setLongTimeout(cancelled, 60 * DAY_MS);
    vi.advanceTimersByTime(MAX_TIMER_MS + 10);
    cancel();
    vi.advanceTimersByTime(60 * DAY_MS);
    expect(cancelled).not.toHaveBeenCalled();
  });
});
