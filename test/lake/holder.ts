/**
 * A worker that holds a lake's catalogue and keeps it, idle: `holder.ts <lake>` reads the ledger
 * (taking the catalogue), prints `holding`, and lets go when its stdin closes (it would hand the
 * catalogue over at once to a process that leaves a waiting marker).
 */
import { LakeWarehouse } from '../../activities/warehouse/lake/lake-dialect.ts';

const wh = new LakeWarehouse(process.argv[2]!);
await wh.ledger({ node: 'orders' });
process.stdout.write(`holding ${wh.lake.hold.held}\n`);
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
process.stdout.write(`still holding ${wh.lake.hold.held}\n`);
await wh.close();
