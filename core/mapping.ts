/** Helpers over mappings and partitions that workflows use. (zod reaches the workflow bundle through core/limits.ts only, on purpose: see test/unit/rooms.test.ts.) */
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
