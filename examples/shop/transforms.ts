/**
 * The shop example's custom transform: `generate_orders` makes one day of order events,
 * the same rows every time for the same day (a PRNG seeded by the partition key), so that
 * re-running the backfill reproduces every checksum.
 */
import { defineTransforms, seededRandom, unitHash } from '../../transforms.ts';

const COUNTRIES = [
  { code: 'DE', currency: 'EUR', weight: 5 },
  { code: 'FR', currency: 'EUR', weight: 4 },
  { code: 'GB', currency: 'GBP', weight: 3 },
  { code: 'US', currency: 'USD', weight: 6 },
  { code: 'NL', currency: 'EUR', weight: 2 },
];
const STATUSES = ['paid', 'paid', 'paid', 'paid', 'paid', 'paid', 'paid', 'paid', 'refunded', 'test'];

export default defineTransforms({
  generate_orders: ({ partition, window, params }) => {
    if (!window) throw new Error('generate_orders needs daily time partitions');
    const random = seededRandom(Math.floor(unitHash(`orders/${partition}`) * 2 ** 32));
    const base = typeof params.ordersPerDay === 'number' ? params.ordersPerDay : 200;
    const dayStart = Date.parse(window.start);
    // Weekends sell more; the count varies a little from day to day.
    const weekday = new Date(dayStart).getUTCDay();
    const count = Math.round(base * (weekday === 0 || weekday === 6 ? 1.3 : 1) * (0.85 + random() * 0.3));
    const totalWeight = COUNTRIES.reduce((sum, c) => sum + c.weight, 0);
    return Array.from({ length: count }, (_, i) => {
      let pick = random() * totalWeight;
      const country = COUNTRIES.find((c) => (pick -= c.weight) < 0) ?? COUNTRIES[0]!;
      const at = new Date(dayStart + Math.floor(random() * 86_400_000));
      return {
        order_id: `${partition.replaceAll('-', '')}-${String(i).padStart(5, '0')}`,
        customer_id: `c${String(Math.floor(random() * 5000)).padStart(5, '0')}`,
        ordered_at: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        country: country.code,
        currency: country.currency,
        amount_cents: 500 + Math.floor(random() * 20_000),
        status: STATUSES[Math.floor(random() * STATUSES.length)]!,
      };
    });
  },
});
