/** What `backfill retry-failed` prints: how many partitions it sent back, in the running backfill or in a new run. */
import { describe, expect, it } from 'vitest';
import { renderRetried } from '../../client/commands/retry-failed.ts';

describe('retry-failed output', () => {
  it('counts one failed partition in the singular, several in the plural', () => {
    expect(renderRetried('s2', { retried: 1, changed: [], resumed: { uiUrl: 'http://ui/s2' } })).toBe('s2 resumed in a new run to retry 1 failed partition\n  web UI: http://ui/s2');
    expect(renderRetried('s2', { retried: 28, changed: [], resumed: null })).toBe('s2: retrying 28 failed partitions');
    expect(renderRetried('s2', { retried: 1, changed: [], resumed: null })).toBe('s2: retrying 1 failed partition');
  });
});
