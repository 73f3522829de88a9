import { describe, it, expect } from 'vitest';
import { describeMapping, grainOf, mappingKind } from '../../core/mapping.ts';

describe('mapping helpers', () => {
  it('mappingKind names the kind of every mapping', () => {
    expect(mappingKind('identity')).toBe('identity');
    expect(mappingKind('window')).toBe('window');
    expect(mappingKind('all')).toBe('all');
    expect(mappingKind({ lag: { from: -6, to: 0 } })).toBe('lag');
  });

  it('describeMapping writes lags with their bounds', () => {
    expect(describeMapping('window')).toBe('window');
    expect(describeMapping('all')).toBe('all');
    expect(describeMapping({ lag: { from: -6, to: 0 } })).toBe('lag(-6..0)');
    expect(describeMapping({ lag: { from: 1, to: 3 } })).toBe('lag(1..3)');
  });

  it('grainOf gives the grain, or static for keys', () => {
    expect(grainOf({ kind: 'time', grain: 'week', start: 0, end: 1 })).toBe('week');
    expect(grainOf({ kind: 'static', keys: ['a'] })).toBe('static');
  });
});
