/** Stack captures for every promise (the SDK's stack-trace query) cost most of a workflow task: keep them short. */
Error.stackTraceLimit = 3;
export { backfillWorkflow } from './backfill.ts';
export { nodeWorkflow } from './node.ts';
export { rollbackWorkflow } from './rollback.ts';
