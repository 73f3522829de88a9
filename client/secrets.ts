/**
 * The connection's secrets (the API key, gRPC metadata values), kept out of every message the
 * command line prints. A module without imports: `cli.ts` loads it for every command.
 */

/** Shorter values (`x-team = "data"`) are not secrets, and removing them would garble messages. */
const MIN_SECRET_LENGTH = 6;

const known = new Set<string>();

/** The forms in which a value may appear in an error: as it is, JSON-escaped (as gRPC quotes it), and its printable runs. */
function forms(value: string): string[] {
  const escaped = JSON.stringify(value).slice(1, -1);
  const runs = value.split(/[^\x20-\x7e]+/);
  return [value, escaped, ...runs].filter((form) => form.trim().length >= MIN_SECRET_LENGTH);
}

/** Remembers `values` (the connection's secrets) so that `redactSecrets` removes them from any text. */
export function rememberSecrets(values: Iterable<string | undefined>): void {
  for (const value of values) if (value !== undefined) for (const form of forms(value)) known.add(form);
}

/** `text` without the remembered secrets and `extra` (each replaced by `[redacted]`), longest first. */
export function redactSecrets(text: string, extra: Iterable<string | undefined> = []): string {
  const secrets = new Set(known);
  for (const value of extra) if (value !== undefined) for (const form of forms(value)) secrets.add(form);
  let redacted = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) redacted = redacted.replaceAll(secret, '[redacted]');
  return redacted;
}
