/** Helpers over mappings and partitions that workflows use: no zod here, so workflow bundles stay small. */
import type { Grain } from './calendar.ts';
import type { Mapping, MappingKind, ResolvedPartitions } from './spec.ts';

export function mappingKind(mapping: Mapping): MappingKind {
  return typeof mapping === 'string' ? mapping : 'lag';
}

export function describeMapping(mapping: Mapping): string {
  return typeof mapping === 'string' ? mapping : `lag(${mapping.lag.from}..${mapping.lag.to})`;
}

export function grainOf(partitions: ResolvedPartitions): Grain | 'static' {
  return partitions.kind === 'time' ? partitions.grain : 'static';
}
