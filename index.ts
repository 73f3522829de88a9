/**
 * The package's public API, `import … from 'durable-backfill'`: the client library that starts
 * and controls backfills, the spec's types and validation, and (as in
 * 'durable-backfill/transforms', which loads far less) what a transforms module needs.
 * Workers of your own: 'durable-backfill/worker'.
 */
export { defineTransforms, seededRandom, unitHash, NonRetryableError, ThrottledError, type PartitionSession, type Row, type Transform, type TransformContext } from './activities/index.ts';
export type { PartitionInput } from './core/protocol.ts';
export type { Bindings, SqlValue } from './activities/warehouse/types.ts';

export { resolveSpec, parseRange, type SpecInput, type ResolvedSpec, type ResolvedNode, type ResolvedPartitions, type NodeSpec, type CheckInput, type Mapping, type PartitionRange } from './core/spec.ts';
export { loadSpecFile, type LoadedSpec } from './client/spec-file.ts';
export { expandPlan, planSummary, type Plan, type PlanSummary } from './core/plan.ts';
export { BackfillError, type ErrorCode } from './core/errors.ts';

export {
  BackfillClient,
  defaultBackfillId,
  type ConnectOptions,
  type StartOptions,
  type DatasetWait,
  type Started,
  type Status,
  type Outcome,
  type RollbackOptions,
  type RollbackStarted,
} from './client/backfill-client.ts';
export type { ConnectionOverrides, ConnectionSettings } from './client/connection.ts';
export type { Progress, BackfillState, Limits } from './core/protocol.ts';
