import { describe, expect, it } from 'vitest';
import { valueText } from '../../core/value-text.ts';

describe('valueText', () => {
  it('is the JSON of a small value (numbers as written, undefined named)', () => {
    for (const value of [null, true, 'fast', { rate: 'fast', n: [1, 'x', null] }, [], {}, { a: { b: { c: 1 } } }]) expect(valueText(value)).toBe(JSON.stringify(value));
    expect(valueText(Number.NaN)).toBe('NaN');
    expect(valueText(undefined)).toBe('undefined');
    expect(valueText([undefined, 1])).toBe('[null,1]');
    expect(valueText({ a: undefined, b: 2 })).toBe('{"b":2}');
  });

  it('cuts a long value at its bound, and a deep one at a few levels, where JSON.stringify overflows the stack', () => {
    expect(valueText('x'.repeat(500), 10)).toBe(`${'"xxxxxxxxx'}…`);
    expect(valueText(Array.from({ length: 1_000_000 }, (_, i) => i), 20)).toBe('[0,1,2,3,4,5,6,7,8,9…');
    const depth = 200_000;
    const deep = JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`) as unknown;
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(valueText(deep)).toBe(`${'{"a":'.repeat(8)}{…}${'}'.repeat(8)}`);
  });
});
