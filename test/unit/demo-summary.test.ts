import { describe, expect, it } from 'vitest';
import { paceLine } from '../../client/demo.ts';

describe("the demo's summary", () => {
  it('names both rates: over the time partitions ran (as the headline) and over the whole demo', () => {
    const line = paceLine({ partitions: 175, total: 175, rows: 10_254, seconds: 3.684, throughput: 208.33 });
    // Before: '175/175 partitions (10,254 rows) in 3.7s, 47.5/s' under a headline of 208.3/s, unexplained.
    expect(line).toBe('175/175 partitions (10,254 rows): 208.3/s while partitions ran (the throughput above); 3.7s in all, 47.5/s with starting the backfill and watching it');
  });

  it('leaves out the rate while partitions ran when the backfill reported none', () => {
    expect(paceLine({ partitions: 0, total: 4, rows: 0, seconds: 2, throughput: null })).toBe('0/4 partitions (0 rows): 2.0s in all, 0.0/s with starting the backfill and watching it');
  });
});
