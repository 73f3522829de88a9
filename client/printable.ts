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

/** `value` with every string in it made printable (`printableText`), keys and structure kept. */
export function printable<T>(value: T): T {
  if (typeof value === 'string') return printableText(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => printable(item)) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, printable(v)])) as T;
  return value;
}
