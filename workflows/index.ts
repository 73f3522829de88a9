export { backfillWorkflow } from './backfill.ts';
export { nodeWorkflow } from './node.ts';
