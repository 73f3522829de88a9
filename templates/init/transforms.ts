/**
 * The transforms backfill.yaml names: functions that produce one partition. The worker loads
 * this module (`backfill dev`, `backfill worker --transforms transforms.ts`).
 */
import { NonRetryableError, defineTransforms, seededRandom, unitHash } from '{{package}}/transforms';

const PAGES = ['/', '/pricing', '/docs', '/blog', '/signup'];

export default defineTransforms({
  // One hour of page views. Yours would read a source instead (an API, files, a database) and
  // throw ThrottledError when it says "slow down": the dataset then halves its rate and the
  // partition runs again later. Here a generator seeded by the partition key makes the same
  // rows for the same hour, so a rerun reproduces every checksum.
  generate_page_views: ({ partition, window, params }) => {
    if (!window) throw new NonRetryableError('generate_page_views needs time partitions');
    const random = seededRandom(Math.floor(unitHash(`page_views/${partition}`) * 2 ** 32));
    const perHour = typeof params.viewsPerHour === 'number' ? params.viewsPerHour : 60;
    const start = Date.parse(window.start);
    return Array.from({ length: Math.round(perHour * (0.5 + random())) }, (_, i) => ({
      view_id: `${partition}-${i}`,
      viewed_at: new Date(start + Math.floor(random() * 3_600_000)).toISOString(),
      visitor_id: `v${Math.floor(random() * 500)}`,
      page: PAGES[Math.floor(random() * PAGES.length)],
    }));
  },
});
