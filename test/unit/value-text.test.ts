import { describe, expect, it } from 'vitest';
import { nameText, valueText } from '../../core/value-text.ts';

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

describe('nameText', () => {
  it('quotes a short printable name as it is', () => {
    expect(nameText('orders_clean')).toBe("'orders_clean'");
  });
  it('shows a name with control characters, quotes or a megabyte as bounded JSON', () => {
    expect(nameText('\u001b[2Jx')).toBe('"\\u001b[2Jx"');
    expect(nameText("it's")).toBe('"it\'s"');
    expect(nameText('a"b')).toBe('"a\\"b"');
    const long = nameText('x'.repeat(1_000_000));
    expect(long.length).toBeLessThan(110);
    expect(long.endsWith('…')).toBe(true);
  });
  it('shows what is not text as JSON', () => {
    expect(nameText(42)).toBe('42');
    expect(nameText({ a: 1 })).toBe('{"a":1}');
  });
});

describe('names anyone may send, in refusals', () => {
  it("a control's unknown fields and an unknown node are shown escaped and bounded", async () => {
    const { parseMeta } = await import('../../core/audit.ts');
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`\u001b]0;k${i}`, 1]));
    let message = '';
    try {
      parseMeta({ reason: 'r', ...many });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('"\\u001b]0;k0"');
    expect(message).not.toContain('\u001b');
    expect(message).not.toContain('k5"');
    expect(message.length).toBeLessThan(300);
  });
});

describe("the controls JSON leaves as they are", () => {
  it('are escaped too (DEL, C1 controls such as CSI, the line separators)', () => {
    expect(valueText('a\u009b2Jb\u007f\u2028')).toBe('"a\\u009b2Jb\\u007f\\u2028"');
    expect(nameText('x\u009by')).toBe('"x\\u009by"');
    // A bidi override and a zero width, which make a name read as another.
    expect(nameText('a\u202eb\u200bc')).toBe('"a\\u202eb\\u200bc"');
    expect(JSON.parse(nameText('a\u202eb\u{e0041}'))).toBe('a\u202eb\u{e0041}');
    expect(JSON.parse(valueText({ 'k\u0085': 'v\u009b' }))).toEqual({ 'k\u0085': 'v\u009b' });
  });
});
