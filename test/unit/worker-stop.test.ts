/** What a stopping worker tells the user: the grace it gives the partitions running. */
import { describe, expect, it } from 'vitest';
import { stoppingMessage } from '../../client/worker-stop.ts';

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
