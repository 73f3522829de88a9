/**
 * What a transforms module imports, `import … from 'durable-backfill/transforms'`:
 * `defineTransforms`, the errors that tell the orchestrator what a failure is, a seeded PRNG, and
 * the types of a transform's context. It loads none of the client, the worker or a warehouse's
 * driver, so that a transforms module (and `backfill plan`, which loads it) starts at once.
 */
export { defineTransforms, unitHash, type Transform, type TransformContext, type PartitionSession } from './activities/transforms.ts';
export { NonRetryableError, ThrottledError } from './activities/errors.ts';
export { seededRandom } from './core/random.ts';
export type { PartitionInput } from './core/protocol.ts';
export type { Bindings, Row, SqlValue } from './activities/warehouse/types.ts';
