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
      'node orders_raw has no version of partition 2024-3-10 in the ledger of w.db: its 3 partitions run from 2024-03-01 to 2024-03-03; check the partition key (e.g. 2024-03-01, 2024-W09, 2024-03)',
    );
  });

  it('says an empty ledger is empty, and a warehouse that cannot list its nodes gets the general hint', () => {
    expect(notInLedger('a', 'k', 'w.db', []).message).toMatch(/^the ledger of w.db has no versions at all/);
    expect(notInLedger('a', 'k', 'w.db', null).message).toBe('no version of a k in the ledger of w.db: check the node id and the partition key (e.g. 2024-03-01, 2024-W09, 2024-03)');
  });
});
