/**
 * Where lineage goes, resolved the way OpenLineage's own clients resolve it:
 *
 * 1. `OPENLINEAGE_DISABLED=true`: nowhere.
 * 2. A `transport` in the configuration: the YAML file named by `OPENLINEAGE_CONFIG`, else
 *    `./openlineage.yml`, else `~/.openlineage/openlineage.yml`, over `OPENLINEAGE__*`
 *    variables (`OPENLINEAGE__TRANSPORT__TYPE=http` is `transport: { type: http }`; the file
 *    wins where both say something).
 * 3. `OPENLINEAGE_URL` (with `OPENLINEAGE_ENDPOINT`, default `api/v1/lineage`, and
 *    `OPENLINEAGE_API_KEY`, sent as a Bearer token): HTTP.
 * 4. Nothing configured: no lineage. (OpenLineage's clients print to the console then; a worker
 *    that nobody asked to emit lineage keeps its output for its own logs.)
 *
 * Transports: `http`, `file` and `console`, with the clients' field names. The job namespace is
 * `OPENLINEAGE_NAMESPACE` (default `backfill`), as in OpenLineage's Airflow integration.
 * Read once, when a worker starts: a bad configuration stops the worker with the fix.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { YAMLError, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BackfillError } from '../../core/errors.ts';
import { DEFAULT_JOB_NAMESPACE } from '../../core/openlineage.ts';

export type HttpTransportConfig = {
  type: 'http';
  /** Where events are POSTed: `endpoint` resolved against `url`. */
  url: string;
  apiKey?: string;
  timeoutMs: number;
  compression?: 'gzip';
  headers: Record<string, string>;
  /** Attempts per event (the first included) before it is given up. */
  attempts: number;
};
export type FileTransportConfig = { type: 'file'; path: string; append: boolean };
export type TransportConfig = HttpTransportConfig | FileTransportConfig | { type: 'console' };

export type LineageSettings = { enabled: false; why: string } | { enabled: true; namespace: string; transport: TransportConfig; source: string };

export type ConfigSources = {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  home: string;
  /** The text of a file, or undefined when there is none. */
  readFile: (path: string) => string | undefined;
};

const SUPPORTED = 'http, file or console';
const DEFAULT_ENDPOINT = 'api/v1/lineage';

const HttpSchema = z.object({
  type: z.literal('http'),
  url: z
    .string({ message: 'is required: the OpenLineage server, e.g. http://marquez:5000' })
    .refine(isHttpUrl, { message: 'must be an http:// or https:// URL' })
    .refine((url) => !hasCredentials(url), { message: 'must not hold a user or password: give the key as auth: { type: api_key, apiKey } (or OPENLINEAGE_API_KEY)' }),
  endpoint: z.string().default(DEFAULT_ENDPOINT),
  timeout: z.coerce.number().positive({ message: 'must be a number of seconds above 0' }).default(5),
  auth: z
    .looseObject({ type: z.string() })
    .refine((a) => a.type === 'api_key', { message: "type must be 'api_key' (the only kind backfill sends: a Bearer token)" })
    .refine((a) => apiKeyOf(a) !== undefined, { message: 'needs apiKey' })
    .optional(),
  compression: z.enum(['gzip'], { message: "must be 'gzip'" }).optional(),
  custom_headers: z.record(z.string(), z.coerce.string()).default({}),
  verify: z.literal(true, { message: 'false is not supported: give Node the certificate instead (NODE_EXTRA_CA_CERTS)' }).optional(),
  retry: z.looseObject({ total: z.coerce.number().int().min(0).max(10).optional() }).optional(),
});
const FileSchema = z.object({
  type: z.literal('file'),
  log_file_path: z.string({ message: 'is required: the file events are written to' }).min(1),
  append: z.coerce.boolean().default(false),
});
const ConsoleSchema = z.object({ type: z.literal('console') });

function isHttpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

function hasCredentials(text: string): boolean {
  const url = new URL(text);
  return url.username !== '' || url.password !== '';
}

/** A URL fit for a log line: no query string (it may hold a token). */
export function displayUrl(text: string): string {
  const url = new URL(text);
  return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
}

function apiKeyOf(auth: Record<string, unknown>): string | undefined {
  const key = auth.apiKey ?? auth.apikey ?? auth.api_key;
  return typeof key === 'string' && key.length > 0 ? key : undefined;
}

function fail(source: string, message: string): never {
  throw new BackfillError('invalid_argument', `OpenLineage configuration (${source}): ${message}`);
}

/** A YAML parse error's message and where, without the source text around it. */
function yamlProblem(error: unknown, text: string): string {
  if (!(error instanceof YAMLError)) return String(error);
  const offset = error.pos[0];
  const before = text.slice(0, offset).split('\n');
  return `${error.message} at line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
}

/**
 * Whether an `OPENLINEAGE__` variable's value is text whatever it looks like: a key, a header or
 * an address made of digits (`APIKEY=20240613123456`, a header `123e4567`) is not a number.
 */
function isTextSetting(path: readonly string[]): boolean {
  return path.includes('auth') || path.includes('custom_headers') || path.includes('headers') || ['url', 'endpoint', 'apikey', 'api_key', 'namespace', 'name'].includes(path[path.length - 1]!);
}

/** `OPENLINEAGE__A__B=v` as `{ a: { b: v } }`; values that parse as JSON are taken as JSON, except text settings' (`isTextSetting`) unless an object. */
function configFromEnv(env: ConfigSources['env']): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  // Reverse order: a top-level key set whole (OPENLINEAGE__TRANSPORT='{...}') wins over its parts.
  const keys = Object.keys(env).filter((k) => k.startsWith('OPENLINEAGE__')).sort().reverse();
  for (const key of keys) {
    const path = key.slice('OPENLINEAGE__'.length).split('__').map((p) => p.toLowerCase());
    let value: unknown = env[key];
    try {
      const parsed: unknown = JSON.parse(env[key]!);
      if (!isTextSetting(path) || isObject(parsed)) value = parsed;
    } catch {
      // a plain string
    }
    let node = config;
    for (const part of path.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return config;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `over` on top of `base`, objects merged key by key. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = isObject(value) && isObject(merged[key]) ? deepMerge(merged[key], value) : value;
  return merged;
}

function configFile(sources: ConfigSources): { path: string; text: string } | undefined {
  const named = sources.env.OPENLINEAGE_CONFIG;
  if (named) {
    const path = resolve(sources.cwd, named);
    const text = sources.readFile(path);
    if (text === undefined) fail('OPENLINEAGE_CONFIG', `${path} does not exist: point OPENLINEAGE_CONFIG at an openlineage.yml, or unset it`);
    return { path, text };
  }
  for (const path of [join(sources.cwd, 'openlineage.yml'), join(sources.home, '.openlineage', 'openlineage.yml')]) {
    const text = sources.readFile(path);
    if (text !== undefined) return { path, text };
  }
  return undefined;
}

export function lineageSettings(sources: ConfigSources): LineageSettings {
  const { env } = sources;
  if (env.OPENLINEAGE_DISABLED?.trim().toLowerCase() === 'true') return { enabled: false, why: 'OPENLINEAGE_DISABLED=true' };
  const namespace = env.OPENLINEAGE_NAMESPACE?.trim() || DEFAULT_JOB_NAMESPACE;
  const file = configFile(sources);
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let parsed: unknown;
    try {
      // Not pretty: a pretty error quotes the line, which may hold an API key or a header.
      parsed = parseYaml(file.text, { prettyErrors: false });
    } catch (error) {
      fail(file.path, `is not valid YAML: ${yamlProblem(error, file.text)} (the line is not shown: it may hold a secret)`);
    }
    if (parsed !== null && parsed !== undefined && !isObject(parsed)) fail(file.path, 'must be a mapping, e.g. transport: { type: http, url: http://marquez:5000 }');
    fromFile = (parsed as Record<string, unknown> | null) ?? {};
  }
  const config = deepMerge(configFromEnv(env), fromFile);
  const source = file ? file.path : 'OPENLINEAGE__ variables';
  const transport = config.transport;
  if (transport !== undefined && !isObject(transport)) fail(source, 'transport must be a mapping with a type');
  if (transport?.type !== undefined) {
    if (transport.type === 'noop') return { enabled: false, why: `transport type noop (${source})` };
    return { enabled: true, namespace, transport: transportConfig(transport, source), source };
  }
  if (env.OPENLINEAGE_URL) {
    const raw = { type: 'http', url: env.OPENLINEAGE_URL, endpoint: env.OPENLINEAGE_ENDPOINT || DEFAULT_ENDPOINT, ...(env.OPENLINEAGE_API_KEY ? { auth: { type: 'api_key', apiKey: env.OPENLINEAGE_API_KEY } } : {}) };
    return { enabled: true, namespace, transport: transportConfig(raw, 'OPENLINEAGE_URL'), source: 'OPENLINEAGE_URL' };
  }
  return { enabled: false, why: 'no OpenLineage transport is configured (set OPENLINEAGE_URL, or OPENLINEAGE_CONFIG / openlineage.yml)' };
}

function transportConfig(raw: Record<string, unknown>, source: string): TransportConfig {
  const schema = raw.type === 'http' ? HttpSchema : raw.type === 'file' ? FileSchema : raw.type === 'console' ? ConsoleSchema : undefined;
  if (!schema) fail(source, `transport type '${String(raw.type)}' is not supported here: use ${SUPPORTED}`);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    fail(source, `transport.${issue.path.join('.') || 'type'} ${issue.message}`);
  }
  const config = parsed.data;
  if (config.type === 'console') return { type: 'console' };
  if (config.type === 'file') return { type: 'file', path: resolve(config.log_file_path), append: config.append };
  const apiKey = config.auth ? apiKeyOf(config.auth) : undefined;
  return {
    type: 'http',
    // As the clients join them (urljoin): a relative endpoint replaces the URL's last path segment.
    url: new URL(config.endpoint, config.url).href,
    ...(apiKey ? { apiKey } : {}),
    timeoutMs: config.timeout * 1000,
    ...(config.compression ? { compression: config.compression } : {}),
    headers: config.custom_headers,
    attempts: 1 + (config.retry?.total ?? 2),
  };
}

/** The settings of this process: its environment, its working directory and home. */
export function lineageSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): LineageSettings {
  return lineageSettings({
    env,
    cwd: process.cwd(),
    home: homedir(),
    readFile: (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
  });
}

/** The settings as a log line: where events go, never the API key. */
export function describeSettings(settings: LineageSettings): string {
  if (!settings.enabled) return `OpenLineage off: ${settings.why}`;
  const t = settings.transport;
  const where = t.type === 'http' ? `POST ${displayUrl(t.url)}${t.apiKey ? ' (Bearer token)' : ''}` : t.type === 'file' ? `file ${t.path}` : 'console';
  return `OpenLineage on: ${where}, job namespace ${settings.namespace} (from ${settings.source})`;
}
