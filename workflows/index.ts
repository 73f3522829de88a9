export { backfillWorkflow } from './backfill.ts';
export { nodeWorkflow } from './node.ts';
export { rollbackWorkflow } from './rollback.ts';
export { discardEndedWorkflow } from './discard.ts';
