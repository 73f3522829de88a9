import { describe, expect, it } from 'vitest';
import { notInLedger } from '../../client/commands/lineage.ts';

const node = (id: string) => ({ node: id, partitions: 3, first: '2024-03-01', last: '2024-03-03' });

describe('lineage of a partition the ledger has no version of', () => {
  it('says a node is unknown to the ledger, with the names closest to it first, then the others', () => {
    const error = notInLedger('revenue_7', '2024-03-10', 'w.db', ['daily_revenue', 'orders_raw', 'revenue_7d'].map(node));
    expect(error.code).toBe('not_found');
    expect(error.message).toBe('the ledger of w.db has no node revenue_7 (did you mean revenue_7d?): it has versions of revenue_7d, daily_revenue, orders_raw');
  });

  it('lists at most twelve nodes, and says how many more it has', () => {
    const many = Array.from({ length: 15 }, (_, i) => node(`dataset_${String(i).padStart(2, '0')}`));
    expect(notInLedger('avg_7', 'k', 'w.db', many).message).toMatch(/has no node avg_7: it has versions of dataset_00, .*, dataset_11 and 3 more$/);
  });

  it('says a known node has no such partition, and the keys it has', () => {
    expect(notInLedger('orders_raw', '2024-3-10', 'w.db', [node('orders_raw')]).message).toBe(
      'node orders_raw has no version of partition 2024-3-10 in the ledger of w.db: its 3 partitions run from 2024-03-01 to 2024-03-03; check the partition key (its grain is day: e.g. 2024-03-01)',
    );
  });

  it("gives an example of the node's own grain: an hourly node's key is never 2024-03-01 nor 2024-W09", () => {
    const hourly = { node: 'events', partitions: 48, first: '2024-03-01T00', last: '2024-03-02T23' };
    expect(notInLedger('events', '2024-03-01', 'w.db', [hourly]).message).toBe(
      'node events has no version of partition 2024-03-01 in the ledger of w.db: its 48 partitions run from 2024-03-01T00 to 2024-03-02T23; check the partition key (its grain is hour: e.g. 2024-03-01T00)',
    );
    expect(notInLedger('weekly', '2024-03-04', 'w.db', [{ node: 'weekly', partitions: 2, first: '2024-W09', last: '2024-W10' }]).message).toMatch(/\(its grain is week: e\.g\. 2024-W09\)$/);
    // The example is a key the node has: a daily node of January and February is never offered 2024-03-01.
    const winter = { node: 'rev_7d', partitions: 60, first: '2024-01-01', last: '2024-02-29' };
    expect(notInLedger('rev_7d', '2024-13-01', 'w.db', [winter]).message).toMatch(/\(its grain is day: e\.g\. 2024-01-01\)$/);
    // Static keys have no grain: the ones it has are named already.
    expect(notInLedger('regions', 'mars', 'w.db', [{ node: 'regions', partitions: 2, first: 'eu', last: 'us' }]).message).toMatch(/run from eu to us; check the partition key$/);
  });

  it('says an empty ledger is empty, and a warehouse that cannot list its nodes gets the general hint', () => {
    expect(notInLedger('a', 'k', 'w.db', []).message).toMatch(/^the ledger of w.db has no versions at all/);
    expect(notInLedger('a', 'k', 'w.db', null).message).toBe('no version of a k in the ledger of w.db: check the node id and the partition key (e.g. 2024-03-01T05, 2024-03-01, 2024-W09, 2024-03)');
  });
});
