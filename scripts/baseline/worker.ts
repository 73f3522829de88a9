/** A worker for the baseline workflow, in a process of its own like the backfill's worker: `node --import tsx scripts/baseline/worker.ts <address> <queue>`. */
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';

const [address, taskQueue] = process.argv.slice(2);
if (!address || !taskQueue) throw new Error('usage: baseline/worker.ts <address> <task-queue>');
Runtime.install({ logger: new DefaultLogger('ERROR') });
const connection = await NativeConnection.connect({ address });
// Bundled beforehand, as the backfill's workers do (bundleWorkflows in workers/worker.ts).
const bundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./workflow.ts', import.meta.url)), logger: new DefaultLogger('ERROR') });
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowBundle: { code: bundle.code },
  activities: { noop: async () => undefined },
  // The same limits as the backfill's worker (workers/worker.ts).
  maxConcurrentWorkflowTaskExecutions: 40,
  maxCachedWorkflows: 400,
  maxConcurrentActivityTaskExecutions: 200,
});
process.stderr.write('worker polling\n');
const stop = () => worker.shutdown();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
await worker.run();
await connection.close();
