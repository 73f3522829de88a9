/** What a transform module needs: `defineTransforms`, the error types, and the context's types. */
export { defineTransforms, unitHash, type Transform, type TransformContext, type PartitionSession } from './transforms.ts';
export { NonRetryableError, ThrottledError } from './errors.ts';
export type { Row } from './warehouse/types.ts';
export { seededRandom } from '../core/random.ts';
