/**
 * A PostgreSQL warehouse URL: what the driver gets (user and password percent-encoded, as it
 * parses them), what messages show (no password), and backfill's own settings in its query:
 *
 *   postgres://user:secret@host/db?backfill_schema=analytics_backfill&backfill_pool_size=20
 *
 * `backfill_schema` names the schema of the ledger and the versions tables (default
 * `backfill`); `backfill_pool_size` the connections each process opens at most (default 10).
 * They are taken out of the URL before the driver sees it.
 */
import { BackfillError } from '../../../core/errors.ts';

export type PostgresOptions = {
  /** The schema of the ledger and the versions tables (default `backfill`). */
  schema?: string;
  /** Connections in the pool (default 10): the most partitions this process publishes at once. */
  poolSize?: number;
  /** Where the warehouse's start-up warnings go (default `console.warn`). */
  warn?: (message: string) => void;
  /** For reading only: no schema, table or function is created (not even a temporary table), and writes are refused. */
  readOnly?: boolean;
};

export const DEFAULT_SCHEMA = 'backfill';
export const DEFAULT_POOL_SIZE = 10;
const MAX_POOL_SIZE = 1000;

/** The user information of a URL: it ends at the last `@` before the query, so a password may hold unencoded `@`, `/` or `:`. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^?#]*)@/i;

/** The URL without its password, for messages and `location`. */
export function redactUrl(url: string): string {
  const match = USERINFO.exec(url);
  const colon = match ? match[2]!.indexOf(':') : -1;
  return match && colon >= 0 ? `${match[1]}${match[2]!.slice(0, colon)}:***@${url.slice(match[0].length)}` : url;
}

/** A password this long is unlikely to be a word of an ordinary message, so any occurrence of it goes. */
const DISTINCTIVE = 12;

/**
 * The text without the password, should a driver or server error ever quote it: where it sits
 * as a password (a URL's user information, `password=`, a JSON field), as typed or
 * percent-encoded; anywhere at all when it is long enough not to be an ordinary word. A short
 * password such as `backfill` is also a schema's and a table's name: masking every occurrence
 * would turn `relation "backfill.ledger"` into `relation "***.ledger"`.
 */
export function redactSecret(text: string, password: string): string {
  if (!password) return text;
  let out = text;
  for (const form of new Set([password, encodeURIComponent(password)])) {
    if (form.length >= DISTINCTIVE) {
      out = out.replaceAll(form, '***');
      continue;
    }
    out = out
      .replaceAll(`:${form}@`, ':***@')
      .replaceAll(`password=${form}`, 'password=***')
      .replaceAll(`"password":"${form}"`, '"password":"***"')
      .replaceAll(`password: '${form}'`, "password: '***'");
  }
  return out;
}

/** The URL with its user and password percent-encoded, as the driver parses it, and the password. */
export function connectionUrl(url: string): { url: string; password: string } {
  const match = USERINFO.exec(url);
  if (!match) return { url, password: '' };
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const [user, ...rest] = match[2]!.split(':');
  const password = decode(rest.join(':'));
  const encoded = `${encodeURIComponent(decode(user!))}${rest.length > 0 ? `:${encodeURIComponent(password)}` : ''}`;
  return { url: `${match[1]}${encoded}@${url.slice(match[0].length)}`, password };
}

const SETTINGS = ['backfill_schema', 'backfill_pool_size'] as const;

function invalid(url: string, message: string): BackfillError {
  return new BackfillError('invalid_argument', `the warehouse ${redactUrl(url)}: ${message}`);
}

/** A schema name backfill can create and name without surprises: a plain identifier of at most 63 characters. */
export function assertSchemaName(schema: string, url: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw invalid(url, `backfill_schema '${schema}' is not a plain schema name: use letters, digits and _ (at most 63, not starting with a digit)`);
  }
}

/** backfill's own settings from the URL's query, and the URL without them (the driver's). */
export function postgresSettings(url: string): { url: string; options: PostgresOptions } {
  const afterUser = USERINFO.exec(url)?.[0].length ?? 0;
  const at = url.indexOf('?', afterUser);
  if (at < 0) return { url, options: {} };
  const hash = url.indexOf('#', at);
  const query = new URLSearchParams(url.slice(at + 1, hash < 0 ? undefined : hash));
  const options: PostgresOptions = {};
  const unknown = [...query.keys()].filter((key) => key.startsWith('backfill_') && !(SETTINGS as readonly string[]).includes(key));
  if (unknown.length > 0) throw invalid(url, `unknown setting ${unknown.join(', ')}: backfill reads ${SETTINGS.join(' and ')} from the URL`);
  const schema = query.get('backfill_schema');
  if (schema !== null) {
    assertSchemaName(schema, url);
    options.schema = schema;
  }
  const pool = query.get('backfill_pool_size');
  if (pool !== null) {
    const size = /^\d+$/.test(pool) ? Number(pool) : NaN;
    if (!(size >= 1 && size <= MAX_POOL_SIZE)) throw invalid(url, `backfill_pool_size '${pool}' is not a number of connections from 1 to ${MAX_POOL_SIZE}`);
    options.poolSize = size;
  }
  // The other parameters stay as they were written (the driver decodes them itself).
  const rest = url
    .slice(at + 1, hash < 0 ? undefined : hash)
    .split('&')
    .filter((pair) => !(SETTINGS as readonly string[]).includes(decodeURIComponent(pair.split('=')[0]!)))
    .join('&');
  return { url: `${url.slice(0, at)}${rest.length > 0 ? `?${rest}` : ''}${hash < 0 ? '' : url.slice(hash)}`, options };
}
