/**
 * Where to connect: Temporal's environment configuration (`@temporalio/envconfig`: the
 * TEMPORAL_* variables and the profiles of a TOML file) with `--address`, `--namespace` and
 * `--profile` on top. The client library, the command line and the workers all connect
 * through these settings.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { platform } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Connection, TLSConfig } from '@temporalio/client';
import { loadClientConfig, loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ClientConnectConfig } from '@temporalio/envconfig';
import { BackfillError } from '../core/errors.ts';
import { shellWord } from '../core/shell-word.ts';
import { temporalAddressProblem, type AddressSource } from '../core/temporal-address.ts';
import { rememberSecrets, redactSecrets } from './secrets.ts';
import { probeTls, type TlsProblem } from './tls-probe.ts';

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';
const DEFAULT_PROFILE = 'default';

/** What the command line (or a caller) says; it wins over the environment and the config file. */
export type ConnectionOverrides = { address?: string; namespace?: string; profile?: string };

/** Options that `Connection.connect` (client) and `NativeConnection.connect` (worker) both take. */
export type TemporalConnectOptions = Pick<ClientConnectConfig['connectionOptions'], 'tls' | 'apiKey' | 'metadata'> & { address: string };

export type ConnectionSettings = {
  address: string;
  namespace: string;
  /** The profile read from the config file; null when none was read. */
  profile: string | null;
  /** The TOML config file read; null when there is none. */
  configFile: string | null;
  tls: boolean;
  apiKey: boolean;
  options: TemporalConnectOptions;
};

type Env = Readonly<Record<string, string | undefined>>;

/** gRPC status codes that change what a message should tell the user. */
export const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, UNIMPLEMENTED: 12, UNAUTHENTICATED: 16 } as const;

/** The gRPC status code of an error or of one of its causes (the SDK wraps them). */
export function grpcCode(error: unknown): number | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function userConfigDir(env: Env): string | undefined {
  switch (platform()) {
    case 'win32':
      return env.APPDATA || undefined;
    case 'darwin':
      return env.HOME ? join(env.HOME, 'Library', 'Application Support') : undefined;
    default: {
      const xdg = env.XDG_CONFIG_HOME;
      if (xdg) return isAbsolute(xdg) ? xdg : undefined;
      return env.HOME ? join(env.HOME, '.config') : undefined;
    }
  }
}

/** The config file envconfig reads: $TEMPORAL_CONFIG_FILE, else temporalio/temporal.toml in the user's config directory. */
export function configFilePath(env: Env = process.env): string | null {
  if (env.TEMPORAL_CONFIG_FILE) return env.TEMPORAL_CONFIG_FILE;
  const dir = userConfigDir(env);
  return dir === undefined ? null : join(dir, 'temporalio', 'temporal.toml');
}

function configError(message: string): BackfillError {
  return new BackfillError('invalid_argument', message);
}

/** An empty variable counts as unset (except TEMPORAL_GRPC_META_*, where empty removes a header). */
function variables(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && (entry[1] !== '' || entry[0].startsWith('TEMPORAL_GRPC_META_'))),
  );
}

/**
 * What is wrong with a config file, without its text: the TOML parser's message quotes the
 * lines around the error, which may hold an API key. A syntax error says where (line, column);
 * the schema's errors name keys only, never values.
 */
function configFileProblem(error: unknown): string {
  const { line, column, message } = error as { line?: unknown; column?: unknown; message?: unknown };
  if (typeof line === 'number' && typeof column === 'number') return `not valid TOML at line ${line}, column ${column}`;
  const first = String(message ?? error).split('\n')[0] ?? '';
  return /^Validation error: /.test(first) ? first.replace(/^Validation error: /, '') : 'not a valid Temporal config file';
}

function readProfiles(file: string): Record<string, ClientConfigProfile> {
  try {
    return loadClientConfig({ configSource: { path: file } }).profiles;
  } catch (error) {
    throw configError(`cannot read the Temporal config file ${file} (${configFileProblem(error)}): fix it, or point TEMPORAL_CONFIG_FILE at another file`);
  }
}

/** The text values of gRPC metadata (a binary header's value is a Buffer). */
function textValues(metadata: Readonly<Record<string, unknown>> | undefined): string[] {
  return Object.values(metadata ?? {}).filter((value): value is string => typeof value === 'string');
}

/** What gRPC can send as a header value: printable ASCII only (it refuses anything else, quoting the value). */
const SENDABLE = /^[\x20-\x7e]*$/;

/**
 * Refuses an API key or a gRPC metadata value gRPC cannot send (a carriage return from a secret
 * file saved with Windows line endings, say): gRPC's own error quotes the value. The message
 * names where the value comes from, never the value.
 */
function checkSendable(apiKey: unknown, metadata: Readonly<Record<string, unknown>> | undefined, env: Env, where: string): void {
  const problem = 'holds a character gRPC cannot send (a control character, such as the carriage return of a file saved with Windows line endings, or a non-ASCII one)';
  if (typeof apiKey === 'string' && !SENDABLE.test(apiKey)) {
    const source = env.TEMPORAL_API_KEY === apiKey ? 'TEMPORAL_API_KEY' : `api_key of ${where}`;
    throw configError(`${source} ${problem}: remove it (e.g. tr -d '\\r\\n' < key-file), and set it again`);
  }
  for (const [key, value] of Object.entries(metadata ?? {})) {
    // A binary header (-bin) is sent base64-encoded.
    if (key.endsWith('-bin') || typeof value !== 'string' || SENDABLE.test(value)) continue;
    const variable = Object.keys(env).find((name) => name.startsWith('TEMPORAL_GRPC_META_') && env[name] === value);
    const source = variable ?? `grpc_meta '${key}' of ${where}`;
    throw configError(`${source} (gRPC header '${key}') ${problem}: remove it, and set it again`);
  }
}

const TLS_FILES = [
  { field: 'clientCert', variable: 'TEMPORAL_TLS_CLIENT_CERT_PATH', key: 'client_cert_path' },
  { field: 'clientKey', variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH', key: 'client_key_path' },
  { field: 'serverCACert', variable: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', key: 'server_ca_cert_path' },
] as const;

function checkTls(profile: ClientConfigProfile, env: Env, where: string): void {
  const tls = profile.tls;
  if (env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === 'true' || env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === '1') {
    throw configError(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the Temporal TypeScript SDK: unset it, and set TEMPORAL_TLS_SERVER_NAME to the name in the server certificate or TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA',
    );
  }
  if (!tls || tls.disabled) return;
  for (const { field, variable, key } of TLS_FILES) {
    const source = tls[field];
    if (source && 'path' in source && !existsSync(source.path)) {
      const setting = env[variable] === source.path ? variable : `tls.${key} of ${where}`;
      throw configError(`the TLS file ${source.path} (${setting}) does not exist: fix the path, or remove the setting`);
    }
  }
  if ((tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
    const given = tls.clientCert ? 'a client certificate without its key' : 'a client key without its certificate';
    throw configError(
      `the TLS settings have ${given}: set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or client_cert_path and client_key_path in ${where})`,
    );
  }
}

/**
 * Resolves the connection settings. Precedence, highest first: `overrides` (the command line),
 * the TEMPORAL_* environment variables, the profile (`overrides.profile`, else $TEMPORAL_PROFILE,
 * else `default`) of the config file, then localhost:7233 and namespace `default`.
 */
export function resolveConnection(overrides: ConnectionOverrides = {}, env: Env = process.env): ConnectionSettings {
  const file = configFilePath(env);
  const fileExists = file !== null && existsSync(file);
  if (env.TEMPORAL_CONFIG_FILE && !fileExists) {
    throw configError(`TEMPORAL_CONFIG_FILE=${env.TEMPORAL_CONFIG_FILE} does not exist: fix the path, or unset TEMPORAL_CONFIG_FILE`);
  }
  const profiles = fileExists ? readProfiles(file) : {};
  const requested = overrides.profile ?? (env.TEMPORAL_PROFILE || undefined);
  if (requested !== undefined && !(requested in profiles)) {
    const origin = overrides.profile !== undefined ? '--profile' : 'TEMPORAL_PROFILE';
    const known = Object.keys(profiles);
    throw configError(
      fileExists
        ? `${origin} '${requested}' is not a profile of ${file} (its profiles: ${known.length > 0 ? known.join(', ') : 'none'}): fix the name, or add [profile.${requested}] to the file`
        : `${origin} '${requested}' names a profile, but there is no Temporal config file${file ? ` at ${file}` : ''}: create it with a [profile.${requested}] section, or set TEMPORAL_CONFIG_FILE`,
    );
  }
  const profileName = requested ?? (DEFAULT_PROFILE in profiles ? DEFAULT_PROFILE : null);
  const where = profileName !== null && fileExists ? `profile '${profileName}' in ${file}` : 'the profile';

  let profile: ClientConfigProfile;
  let loaded: ClientConnectConfig;
  try {
    profile = loadClientConfigProfile({
      ...(requested !== undefined ? { profile: requested } : {}),
      ...(fileExists ? { configSource: { path: file } } : { disableFile: true }),
      overrideEnvVars: variables(env),
    });
    checkTls(profile, env, where);
    loaded = toClientOptions({
      ...profile,
      ...(overrides.address !== undefined ? { address: overrides.address } : {}),
      ...(overrides.namespace !== undefined ? { namespace: overrides.namespace } : {}),
    });
  } catch (error) {
    if (error instanceof BackfillError) throw error;
    // A parser's message quotes the file's lines; any other may quote a value: neither is printed as it is.
    const problem = (error as { line?: unknown }).line !== undefined ? `the config file is ${configFileProblem(error)}` : redactSecrets((error as Error).message, Object.values(variables(env)));
    throw configError(`the Temporal connection settings (TEMPORAL_* variables${fileExists ? `, ${where}` : ''}) are invalid: ${problem}`);
  }
  const { tls, apiKey, metadata } = loaded.connectionOptions;
  rememberSecrets([typeof apiKey === 'string' ? apiKey : undefined, ...textValues(metadata)]);
  checkSendable(apiKey, metadata, env, where);
  // An empty TEMPORAL_ADDRESS (or address in a profile) counts as unset, as every empty variable
  // does (`variables`); an empty --address was typed on purpose, and is refused.
  const given = overrides.address ?? (loaded.connectionOptions.address || undefined);
  if (given !== undefined) {
    const source: AddressSource = overrides.address !== undefined ? { kind: 'flag' } : env.TEMPORAL_ADDRESS ? { kind: 'env' } : { kind: 'profile', where };
    const problem = temporalAddressProblem(given, source);
    if (problem !== null) throw configError(problem);
  }
  const address = given ?? DEFAULT_ADDRESS;
  return {
    address,
    namespace: loaded.namespace || DEFAULT_NAMESPACE,
    profile: fileExists ? profileName : null,
    configFile: fileExists ? file : null,
    tls: Boolean(tls),
    apiKey: apiKey !== undefined,
    options: { address, tls, apiKey, metadata },
  };
}

/** Plain settings for a server this process started itself (`backfill dev`, `demo`): no profile, no TLS. */
export function localConnection(address: string, namespace = DEFAULT_NAMESPACE): ConnectionSettings {
  return { address, namespace, profile: null, configFile: null, tls: false, apiKey: false, options: { address } };
}

/** `localhost:7233, namespace default, profile 'prod' of ~/.config/temporalio/temporal.toml, TLS, API key` */
export function describeConnection(settings: ConnectionSettings): string {
  return [
    settings.address,
    `namespace ${settings.namespace}`,
    ...(settings.profile !== null ? [`profile '${settings.profile}' of ${settings.configFile}`] : []),
    ...(settings.tls ? ['TLS'] : []),
    ...(settings.apiKey ? ['API key'] : []),
  ].join(', ');
}

function howToChange(settings: ConnectionSettings): string {
  const profile = settings.profile !== null ? `, edit profile '${settings.profile}' in ${settings.configFile}` : '';
  return `set --address and --namespace (or TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE)${profile}, or choose a profile with --profile (or TEMPORAL_PROFILE)`;
}

/** The TLS options the SDK gets, as an object (undefined when TLS is off). */
function tlsOptions(settings: ConnectionSettings): TLSConfig | undefined {
  const { tls } = settings.options;
  if (!tls) return undefined;
  return tls === true ? {} : tls;
}

/** `TEMPORAL_TLS_SERVER_NAME (or server_name in [profile.prod.tls] of ~/.config/temporalio/temporal.toml)` */
function tlsSetting(settings: ConnectionSettings, variables: string, keys: string): string {
  return settings.profile !== null ? `${variables} (or ${keys} in [profile.${settings.profile}.tls] of ${settings.configFile})` : variables;
}

const CLIENT_PAIR = ['TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH', 'client_cert_path and client_key_path'] as const;

/** `CN=worker-7, issued by CN=Platform CA, expired 2025-01-01T00:00:00.000Z` */
function describeCertificate(pem: Uint8Array | undefined): string | null {
  if (pem === undefined) return null;
  try {
    const cert = new X509Certificate(Buffer.from(pem));
    const name = (dn: string) => dn.split('\n').find((part) => part.startsWith('CN=')) ?? dn.replaceAll('\n', ', ');
    const expired = Date.parse(cert.validTo) < Date.now() ? `, expired ${new Date(cert.validTo).toISOString()}` : '';
    return `${name(cert.subject)}, issued by ${name(cert.issuer)}${expired}`;
  } catch {
    return null;
  }
}

/** The message for a TLS problem that `probeTls` found: the cause, then the setting that fixes it. */
function tlsFailure(settings: ConnectionSettings, problem: TlsProblem): BackfillError {
  const tried = describeConnection(settings);
  const tls = tlsOptions(settings);
  const clientPair = tlsSetting(settings, ...CLIENT_PAIR);
  const serverCa = tlsSetting(settings, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'server_ca_cert_path');
  const serverName = tlsSetting(settings, 'TEMPORAL_TLS_SERVER_NAME', 'server_name');
  const message = ((): string => {
    switch (problem.kind) {
      case 'client_certificate_required':
        return `the Temporal server requires a client certificate (mTLS), and none was sent (${tried}): set ${clientPair} to a certificate and key issued by a CA the server trusts for clients`;
      case 'client_certificate_rejected': {
        const certificate = describeCertificate(tls?.clientCertPair?.crt);
        const why = problem.alert === 'unknown CA' ? 'it is not signed by a CA the server trusts' : `TLS alert: ${problem.alert}`;
        return `the Temporal server rejected the client certificate${certificate ? ` (${certificate})` : ''}: ${why} (${tried}); set ${clientPair} to a certificate and key issued by a CA the server trusts for clients`;
      }
      case 'server_name_mismatch': {
        const fix = tls?.serverNameOverride
          ? `set ${serverName} to one of those names`
          : `connect to an address the certificate names, or set ${serverName} to one of those names`;
        return `the Temporal server's certificate does not match the name ${problem.expected} (it names ${problem.names.join(', ') || 'no host'}) (${tried}): ${fix}`;
      }
      case 'server_not_trusted':
        return `the Temporal server's certificate${problem.issuer ? ` (issued by ${problem.issuer})` : ''} is not trusted by this client: ${problem.reason} (${tried}); set ${serverCa} to the certificate of the CA that issued it${problem.reason.includes('expired') ? ', or renew the server\'s certificate' : ''}`;
      case 'server_not_tls':
        return `the Temporal server does not speak TLS, and TLS is on (${tried}): set TEMPORAL_TLS=false${settings.profile !== null ? ` (or disabled = true in [profile.${settings.profile}.tls])` : ''}, or turn TLS on at the server`;
      case 'server_requires_tls':
        return `the Temporal server speaks TLS, and TLS is off in these settings (${tried}): set TEMPORAL_TLS=true, with TEMPORAL_TLS_SERVER_CA_CERT_PATH when a private CA issued its certificate, and ${CLIENT_PAIR[0]} when it requires client certificates${settings.profile !== null ? ` (or a [profile.${settings.profile}.tls] table in ${settings.configFile})` : ''}`;
    }
  })();
  return new BackfillError('server_unavailable', message);
}

/**
 * The error to show when connecting failed: what was tried, why, and how to change it. When the
 * error is not the server's verdict on credentials, a TLS handshake of its own (`probeTls`) finds
 * out whether TLS is the cause, since neither SDK client says so clearly.
 */
export async function explainConnectionFailure(settings: ConnectionSettings, error: unknown): Promise<BackfillError> {
  const code = grpcCode(error);
  if (code === GRPC.UNAUTHENTICATED || code === GRPC.PERMISSION_DENIED) return connectionFailure(settings, error);
  const problem = await probeTls(settings.address, tlsOptions(settings)).catch(() => null);
  return connectionFailure(settings, error, problem);
}

/** The error to show when connecting failed: what was tried, and how to change it; `problem` is what `probeTls` found, if anything. */
/** The API key and the gRPC metadata values of `settings`: kept out of every message (`redactSecrets`). */
export function connectionSecrets(settings: ConnectionSettings): Array<string | undefined> {
  const { apiKey, metadata } = settings.options;
  return [typeof apiKey === 'string' ? apiKey : undefined, ...textValues(metadata)];
}

export function connectionFailure(settings: ConnectionSettings, error: unknown, problem: TlsProblem | null = null): BackfillError {
  if (problem !== null) return tlsFailure(settings, problem);
  // gRPC quotes a header value it refuses (the API key is one): never printed.
  const cause = redactSecrets((error as Error).message ?? String(error), connectionSecrets(settings));
  const tried = describeConnection(settings);
  const code = grpcCode(error);
  if (code === GRPC.UNAUTHENTICATED || code === GRPC.PERMISSION_DENIED) {
    return new BackfillError(
      'server_unavailable',
      `the Temporal server refused these credentials (${tried}): ${cause}; check TEMPORAL_API_KEY or the TLS client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH), or ${howToChange(settings)}`,
    );
  }
  const tlsFix = 'a server without TLS needs TEMPORAL_TLS=false, one with a private CA needs TEMPORAL_TLS_SERVER_CA_CERT_PATH (and TEMPORAL_TLS_SERVER_NAME when its certificate names another host)';
  if (/tls|ssl|certificate|handshake|InvalidContentType/i.test(cause)) {
    return new BackfillError('server_unavailable', `the TLS handshake with the Temporal server failed (${tried}): ${cause}; ${tlsFix}`);
  }
  // A TLS client talking to a plaintext server (or the reverse) often just times out.
  const tls = settings.tls ? `; TLS is on: ${tlsFix}` : '';
  return new BackfillError(
    'server_unavailable',
    `cannot reach the Temporal server (${tried}): ${cause}; start one with 'backfill dev', or ${howToChange(settings)}${tls}`,
  );
}

type NamespaceService = { workflowService: { describeNamespace(request: { namespace: string }): Promise<unknown> } };

/** Fails when the namespace does not exist; credentials scoped too narrowly to describe it are let through. */
export async function checkNamespace(connection: NamespaceService, settings: ConnectionSettings): Promise<void> {
  try {
    await connection.workflowService.describeNamespace({ namespace: settings.namespace });
  } catch (error) {
    const code = grpcCode(error);
    if (code === GRPC.NOT_FOUND) {
      throw new BackfillError(
        'not_found',
        `namespace '${settings.namespace}' does not exist on the Temporal server (${describeConnection(settings)}): create it (temporal operator namespace create --namespace ${shellWord(settings.namespace)}), or ${howToChange(settings)}`,
      );
    }
    if (code === GRPC.UNAUTHENTICATED) throw connectionFailure(settings, error);
  }
}

/**
 * A client connection that has answered (`Connection.connect` asks the server for its system
 * info), to a namespace that exists. With `checkNamespace: false` the namespace is not looked up
 * here (one call less): the caller checks it when a call finds nothing.
 */
export async function openConnection(settings: ConnectionSettings, connectTimeoutMs = 5000, options: { checkNamespace?: boolean } = {}): Promise<Connection> {
  // Loaded here, not with the module: resolving the settings (`status`'s light path) needs no SDK.
  const { Connection } = await import('@temporalio/client');
  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...settings.options,
      connectTimeout: connectTimeoutMs,
      // A page of history is up to 1,000 events; with batched partitions it outgrows gRPC's
      // default 4 MB (seen: 4.4 MB pages of a million-partition backfill), and the report reads it.
      channelArgs: { 'grpc.max_receive_message_length': 128 * 1024 * 1024 },
    });
  } catch (error) {
    throw await explainConnectionFailure(settings, error);
  }
  if (options.checkNamespace === false) return connection;
  try {
    await checkNamespace(connection, settings);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}
