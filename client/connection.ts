/**
 * Where to connect: Temporal's environment configuration (`@temporalio/envconfig`: the
 * TEMPORAL_* variables and the profiles of a TOML file) with `--address`, `--namespace` and
 * `--profile` on top. The client library, the command line and the workers all connect
 * through these settings.
 */
import { existsSync } from 'node:fs';
import { platform } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { loadClientConfig, loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ClientConnectConfig } from '@temporalio/envconfig';
import { BackfillError } from '../core/errors.ts';

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

function readProfiles(file: string): Record<string, ClientConfigProfile> {
  try {
    return loadClientConfig({ configSource: { path: file } }).profiles;
  } catch (error) {
    throw configError(`cannot read the Temporal config file ${file} (${(error as Error).message}): fix it, or point TEMPORAL_CONFIG_FILE at another file`);
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
    throw configError(`the Temporal connection settings (TEMPORAL_* variables${fileExists ? `, ${where}` : ''}) are invalid: ${(error as Error).message}`);
  }
  const { tls, apiKey, metadata } = loaded.connectionOptions;
  const address = loaded.connectionOptions.address || DEFAULT_ADDRESS;
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

/** The error to show when connecting failed: what was tried, and how to change it. */
export function connectionFailure(settings: ConnectionSettings, error: unknown): BackfillError {
  const cause = (error as Error).message ?? String(error);
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
        `namespace '${settings.namespace}' does not exist on the Temporal server (${describeConnection(settings)}): create it (temporal operator namespace create --namespace ${settings.namespace}), or ${howToChange(settings)}`,
      );
    }
    if (code === GRPC.UNAUTHENTICATED) throw connectionFailure(settings, error);
  }
}

/** A client connection that has answered, to a namespace that exists. */
export async function openConnection(settings: ConnectionSettings, connectTimeoutMs = 5000): Promise<Connection> {
  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...settings.options,
      connectTimeout: connectTimeoutMs,
      // A page of history is up to 1,000 events; with batched partitions it outgrows gRPC's
      // default 4 MB (seen: 4.4 MB pages of a million-partition backfill), and the report reads it.
      channelArgs: { 'grpc.max_receive_message_length': 128 * 1024 * 1024 },
    });
    await connection.workflowService.getSystemInfo({});
  } catch (error) {
    throw connectionFailure(settings, error);
  }
  try {
    await checkNamespace(connection, settings);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}
