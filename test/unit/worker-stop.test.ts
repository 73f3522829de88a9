/** What a stopping worker tells the user: the grace it gives, and the partitions it abandoned. */
import { describe, expect, it } from 'vitest';
import { stoppedMessage, stoppingMessage } from '../../client/worker-stop.ts';
import { ShutdownExpiredError, describeActivity, type RunningActivity } from '../../workers/in-flight.ts';

const partition = (key: string, attempt = 1): RunningActivity => ({
  activityType: 'runPartitions',
  activityId: `days/${key}`,
  workflowId: 'backfill/b1/days',
  attempt,
  partition: { backfillId: 'b1', node: 'days', partition: key },
});

describe('stoppingMessage', () => {
  it('gives the grace, the partitions running, and how to stop at once (Ctrl-C for SIGINT)', () => {
    expect(stoppingMessage('SIGINT', 20_000, 3)).toBe('SIGINT: stopping; running partitions get up to 20 s to finish (3 running; Ctrl-C again to stop at once)');
    expect(stoppingMessage('SIGTERM', 1500, 1)).toBe('SIGTERM: stopping; running partitions get up to 1.5 s to finish (1 running; a second signal stops at once)');
  });

  it('says that nothing waits where nothing runs, and that a grace of 0 cancels them now', () => {
    expect(stoppingMessage('SIGTERM', 20_000, 0)).toBe('SIGTERM: stopping (no partition is running)');
    expect(stoppingMessage('SIGINT', 0, 2)).toBe('SIGINT: stopping; running partitions are cancelled now and run again later (2 running; --shutdown-grace 0)');
  });
});

describe('ShutdownExpiredError', () => {
  it('names each abandoned partition and its attempt, says that it runs again, and how to stop cleanly', () => {
    const error = new ShutdownExpiredError([partition('2024-01-01'), partition('2024-01-02..2024-01-04', 2)], 20_000, 5_000);
    expect(error.code).toBe('timeout');
    expect(error.message).toContain(
      'the worker stopped without waiting longer for 2 activities that ignored their cancellation (still running 5 s after the 20 s shutdown grace):\n' +
        '  backfill b1 node days partition 2024-01-01 (attempt 1)\n' +
        '  backfill b1 node days partition 2024-01-02..2024-01-04 (attempt 2)\n',
    );
    expect(error.message).toMatch(/No work is lost: each attempt times out .* runs it again/);
    expect(error.message).toContain('make transforms stop when their signal aborts');
  });

  it('names an activity that is not a partition by its type, id and workflow', () => {
    expect(describeActivity({ activityType: 'emitLineage', activityId: '7', workflowId: 'backfill/b1', attempt: 1 })).toBe('activity emitLineage 7 of workflow backfill/b1 (attempt 1)');
  });
});

describe('stoppedMessage', () => {
  it('says what finished during the grace and what went back to the server', () => {
    expect(stoppedMessage('SIGTERM', { finished: 2, handedBack: 1 })).toBe('SIGTERM: stopped; 2 partition activities finished during the grace, 1 handed back to the server (another worker runs it again)');
    expect(stoppedMessage('SIGINT', { finished: 0, handedBack: 0 })).toBe('SIGINT: stopped; no partition was running');
  });
});
