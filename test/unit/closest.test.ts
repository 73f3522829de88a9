import { describe, expect, it } from 'vitest';
import { closestNames, editDistance } from '../../core/closest.ts';

describe('closestNames', () => {
  it('counts edits', () => {
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('revenue_7d', 'revenue_7d')).toBe(0);
    expect(editDistance('revenue_7', 'revenue_7d')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('finds typos and names that hold the one asked for, closest first', () => {
    const known = ['daily_revenue', 'monthly_active_customers', 'orders_clean', 'orders_raw', 'revenue_7d', 'weekly_revenue'];
    expect(closestNames('revenue_7', known)).toEqual(['revenue_7d']);
    expect(closestNames('order_raw', known)).toEqual(['orders_raw']);
    expect(closestNames('dailyrevenue', known)).toEqual(['daily_revenue']);
    expect(closestNames('revenue', known)).toEqual(['revenue_7d', 'daily_revenue', 'weekly_revenue']);
    expect(closestNames('avg_7', known)).toEqual([]);
  });
});
