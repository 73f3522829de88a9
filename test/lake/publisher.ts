/** Another process that publishes to a lake: `publisher.ts <lake> <runKey> <partition>...` (the lake tests run several at once). */
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';
import { write } from '../warehouse/suite.ts';

const [root, runKey, ...partitions] = process.argv.slice(2);
const wh = new LakeWarehouse(root!);
try {
  for (const partition of partitions) {
    await wh.publish(write('orders', partition, { runKey, backfillId: runKey, rows: [{ partition, writer: runKey, pid: process.pid }] }));
  }
} finally {
  await wh.close();
}
