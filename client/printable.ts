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

/** `printableText` line by line: the line breaks kept, for text of several lines such as an error message. */
export function printableLines(text: string): string {
  return text.split('\n').map(printableText).join('\n');
}

/** The colour sequences (SGR: ESC [ parameters m) that picocolors and cli-table3 write on a terminal: the only escape sequences kept. */
const COLOR = /(\u001b\[[0-9;]*m)/;

/**
 * A whole human answer, the last step before the terminal: `printableLines`, with the program's
 * colours kept, so a renderer that forgot to make its data printable cannot clear the screen,
 * move the cursor or hide a link (OSC 8). Renderers still make their data printable first: their
 * tables measure it, and a colour sequence in the data would pass here as one of the program's.
 */
export function terminalText(text: string): string {
  return text
    .split(COLOR)
    .map((part, i) => (i % 2 === 1 ? part : printableLines(part)))
    .join('');
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
