const MAX_DEPTH = 8;

/**
 * JSON's string, with what JSON leaves as it is and a terminal or an editor would act on escaped
 * too: DEL, the C1 controls (CSI), and the format characters (bidi overrides, zero widths).
 */
function jsonString(text: string): string {
  const escape = (c: string) => Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
  return JSON.stringify(text).replace(/[\u007f-\u009f\u2028\u2029\p{Cf}]/gu, escape);
}

/**
 * A value anyone may send (a signal's or an update's argument, a hand-made input), as JSON text
 * for a message or an audit entry: the same text `JSON.stringify` gives a small value, but never
 * more than `max` characters (then `…`) and never deeper than a few levels. `JSON.stringify` of a
 * payload nested some thousands deep, which `JSON.parse` reads, overflows the stack: thrown from
 * a signal's handler, that failed every workflow task of the backfill.
 */
export function valueText(value: unknown, max = 200): string {
  let out = '';
  const full = () => out.length > max;
  const put = (text: string) => {
    if (!full()) out += text;
  };
  const walk = (v: unknown, depth: number): void => {
    if (full()) return;
    if (v === null) return put('null');
    if (v === undefined) return put('undefined');
    if (typeof v === 'number') return put(depth === 0 || Number.isFinite(v) ? String(v) : 'null');
    if (typeof v === 'string') return put(jsonString(v));
    if (typeof v === 'boolean') return put(String(v));
    if (typeof v === 'bigint') return put(`${v}n`);
    if (typeof v !== 'object') return put(typeof v);
    if (depth >= MAX_DEPTH) return put(Array.isArray(v) ? '[…]' : '{…}');
    if (Array.isArray(v)) {
      put('[');
      for (let i = 0; i < v.length && !full(); i++) {
        if (i > 0) put(',');
        walk(v[i] === undefined ? null : v[i], depth + 1);
      }
      return put(']');
    }
    put('{');
    let first = true;
    for (const [key, item] of Object.entries(v)) {
      if (full()) break;
      if (item === undefined || typeof item === 'function') continue;
      if (!first) put(',');
      first = false;
      put(`${jsonString(key)}:`);
      walk(item, depth + 1);
    }
    put('}');
  };
  walk(value, 0);
  return full() ? `${out.slice(0, max)}…` : out;
}

/**
 * A name anyone may send, for a message: `'name'` when it is short, printable text with no quote, else its
 * bounded JSON (`valueText`), so no control character or megabyte of it reaches a log or a caller.
 */
export function nameText(value: unknown, max = 100): string {
  const plain = typeof value === 'string' && value.length <= max && !value.includes("'") && jsonString(value) === `"${value}"`;
  return plain ? `'${value}'` : valueText(value, max);
}
