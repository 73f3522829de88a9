/**
 * Data shown in a terminal as text, never as its commands. Reasons, declared identities, failure
 * messages and spec text come from anyone who can send a control or write a spec: an escape
 * sequence in them could erase the lines above it or hide a link (OSC 8) in `status`, and
 * bidirectional overrides could show text other than what it is. Each such character becomes
 * a space; JSON output keeps the data as it is (JSON escapes them).
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function printableText(text: string): string {
  return text.replace(UNPRINTABLE, ' ');
}

declare const PRINTABLE: unique symbol;

/**
 * What `printable` made: every string in it is printable. Renderers of sections take it, so the
 * text they print went through `printable` once, where the output is put together.
 */
export type Printable<T> = T & { readonly [PRINTABLE]: true };

/** `value` with every string in it made printable (`printableText`), keys and structure kept. */
export function printable<T>(value: T): Printable<T> {
  return printed(value) as Printable<T>;
}

function printed(value: unknown): unknown {
  if (typeof value === 'string') return printableText(value);
  if (Array.isArray(value)) return value.map(printed);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, printed(v)]));
  return value;
}
