import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import proto from '@temporalio/proto';
import { BackfillError } from '../../core/errors.ts';
import { thrownBackfillError } from './backfill-error.ts';
import {
  connectionFailure,
  describeConnection,
  localConnection,
  openConnection,
  resolveConnection,
  type ConnectionOverrides,
} from '../../client/connection.ts';
import {
  checkSearchAttributes,
  registerSearchAttributes,
  rejectedAttribute,
  requireSearchAttributes,
  unregisteredAttribute,
} from '../../client/search-attributes.ts';

let dir: string;
/** An environment with no Temporal settings and a config directory of the test's own (no ~/.config/temporalio). */
let bare: Record<string, string>;

const resolve = (env: Record<string, string> = {}, overrides: ConnectionOverrides = {}) => resolveConnection(overrides, { ...bare, ...env });

const TOML = `
[profile.default]
address = "temporal.internal:7233"
namespace = "analytics"

[profile.cloud]
address = "analytics.a1b2c.tmprl.cloud:7233"
namespace = "analytics.a1b2c"
api_key = "secret-key"

[profile.plain]
address = "plain.internal:7233"
api_key = "key"
[profile.plain.tls]
disabled = true

[profile.meta]
address = "meta.internal:7233"
[profile.meta.grpc_meta]
x-team = "data"
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-connection-'));
  bare = { HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'xdg') };
  writeFileSync(join(dir, 'temporal.toml'), TOML);
  writeFileSync(join(dir, 'ca.pem'), 'CA CERT');
  writeFileSync(join(dir, 'client.pem'), 'CLIENT CERT');
  writeFileSync(join(dir, 'client.key'), 'CLIENT KEY');
  writeFileSync(join(dir, 'broken.toml'), '[profile.default\naddress = ');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveConnection', () => {
  it('defaults to localhost:7233 and namespace default, without TLS, when nothing is configured', () => {
    const settings = resolve();
    expect(settings).toEqual({
      address: 'localhost:7233',
      namespace: 'default',
      profile: null,
      configFile: null,
      tls: false,
      apiKey: false,
      options: { address: 'localhost:7233', tls: undefined, apiKey: undefined, metadata: undefined },
    });
  });

  it('reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE', () => {
    const settings = resolve({ TEMPORAL_ADDRESS: 'temporal.prod:7233', TEMPORAL_NAMESPACE: 'backfills' });
    expect(settings).toMatchObject({ address: 'temporal.prod:7233', namespace: 'backfills', tls: false });
    expect(settings.options.address).toBe('temporal.prod:7233');
  });

  it('treats empty variables as unset', () => {
    expect(resolve({ TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '', TEMPORAL_API_KEY: '' })).toMatchObject({ address: 'localhost:7233', namespace: 'default', apiKey: false, tls: false });
  });

  it('refuses an empty --address (an empty TEMPORAL_ADDRESS stays unset), and a malformed address, as invalid_argument', () => {
    const refusal = (env: Record<string, string>, overrides: ConnectionOverrides) => thrownBackfillError(() => resolve(env, overrides));
    expect(refusal({}, { address: '' })).toMatchObject({ code: 'invalid_argument', message: '--address is empty: give the Temporal frontend as host:port, e.g. --address localhost:7233' });
    expect(refusal({ TEMPORAL_ADDRESS: 'env:7233' }, { address: '' })).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^--address is empty/) });
    expect(refusal({}, { address: 'localhost:abc' })).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^--address 'localhost:abc' has a port/) });
    expect(refusal({}, { address: 'http://localhost:7533' })).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/scheme \(http:\/\/\): drop it/) });
    expect(refusal({}, { address: 'localhost:7533/' })).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/has a path/) });
    expect(refusal({ TEMPORAL_ADDRESS: 'localhost:abc' }, {})).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^TEMPORAL_ADDRESS 'localhost:abc'/) });
    const toml = join(dir, 'bad-address.toml');
    writeFileSync(toml, '[profile.default]\naddress = "http://temporal.internal:7233"\n');
    expect(refusal({ TEMPORAL_CONFIG_FILE: toml }, {})).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(new RegExp(`^the address of profile 'default' in ${toml.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} 'http://temporal.internal:7233' has a scheme`)),
    });
    // A good flag wins over a bad variable: only the address used is checked.
    expect(resolve({ TEMPORAL_ADDRESS: 'localhost:abc' }, { address: 'flag:7233' }).address).toBe('flag:7233');
  });

  it('reads the default profile of the file TEMPORAL_CONFIG_FILE names', () => {
    const settings = resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') });
    expect(settings).toMatchObject({ address: 'temporal.internal:7233', namespace: 'analytics', profile: 'default', configFile: join(dir, 'temporal.toml') });
  });

  it('finds temporalio/temporal.toml in the user config directory', () => {
    const xdg = join(dir, 'config-home');
    mkdirSync(join(xdg, 'temporalio'), { recursive: true });
    writeFileSync(join(xdg, 'temporalio', 'temporal.toml'), '[profile.default]\naddress = "from-xdg:7233"\n');
    expect(resolve({ XDG_CONFIG_HOME: xdg })).toMatchObject({ address: 'from-xdg:7233', configFile: join(xdg, 'temporalio', 'temporal.toml') });
  });

  it('TEMPORAL_PROFILE picks another profile; --profile wins over it', () => {
    const file = { TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') };
    expect(resolve({ ...file, TEMPORAL_PROFILE: 'cloud' })).toMatchObject({ address: 'analytics.a1b2c.tmprl.cloud:7233', namespace: 'analytics.a1b2c', profile: 'cloud' });
    expect(resolve({ ...file, TEMPORAL_PROFILE: 'cloud' }, { profile: 'default' })).toMatchObject({ address: 'temporal.internal:7233', profile: 'default' });
  });

  it('environment variables win over the profile, and the command line wins over both', () => {
    const env = { TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml'), TEMPORAL_ADDRESS: 'env:7233', TEMPORAL_NAMESPACE: 'env-ns' };
    expect(resolve(env)).toMatchObject({ address: 'env:7233', namespace: 'env-ns', profile: 'default' });
    const settings = resolve(env, { address: 'flag:7233', namespace: 'flag-ns' });
    expect(settings).toMatchObject({ address: 'flag:7233', namespace: 'flag-ns' });
    expect(settings.options.address).toBe('flag:7233');
  });

  it('an API key turns TLS on (as envconfig does) unless TLS is disabled explicitly', () => {
    const cloud = resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') }, { profile: 'cloud' });
    expect(cloud).toMatchObject({ tls: true, apiKey: true });
    expect(cloud.options).toMatchObject({ tls: true, apiKey: 'secret-key' });

    const fromEnv = resolve({ TEMPORAL_API_KEY: 'k' });
    expect(fromEnv.options).toMatchObject({ tls: true, apiKey: 'k' });
    expect(resolve({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' })).toMatchObject({ tls: false, apiKey: true });
    expect(resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') }, { profile: 'plain' })).toMatchObject({ tls: false, apiKey: true });
  });

  it('TEMPORAL_TLS=true turns TLS on without an API key', () => {
    expect(resolve({ TEMPORAL_TLS: 'true' })).toMatchObject({ tls: true, apiKey: false });
  });

  it('loads the TLS files: server CA and client certificate pair', () => {
    const settings = resolve({
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem'),
      TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(settings.tls).toBe(true);
    const tls = settings.options.tls as { serverNameOverride?: string; serverRootCACertificate?: Uint8Array; clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toBe('CA CERT');
    expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe('CLIENT CERT');
    expect(Buffer.from(tls.clientCertPair!.key).toString()).toBe('CLIENT KEY');
  });

  it('passes gRPC metadata from the profile and from TEMPORAL_GRPC_META_*', () => {
    const settings = resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml'), TEMPORAL_GRPC_META_X_REGION: 'eu' }, { profile: 'meta' });
    expect(settings.options.metadata).toEqual({ 'x-team': 'data', 'x-region': 'eu' });
  });

  it('names a missing TLS file and the variable that points at it', () => {
    const error = thrownBackfillError(() => resolve({ TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'absent.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key') }));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toContain(join(dir, 'absent.pem'));
    expect(error.message).toContain('TEMPORAL_TLS_CLIENT_CERT_PATH');
    expect(error.message).toMatch(/does not exist: fix the path/);
  });

  it('names a missing TLS file of a profile by its key and profile', () => {
    const file = join(dir, 'tls.toml');
    writeFileSync(file, `[profile.default]\naddress = "x:7233"\n[profile.default.tls]\nserver_ca_cert_path = "${join(dir, 'no-ca.pem')}"\n`);
    const error = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: file }));
    expect(error.message).toContain(`tls.server_ca_cert_path of profile 'default' in ${file}`);
  });

  it('refuses a client certificate without its key', () => {
    const error = thrownBackfillError(() => resolve({ TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.pem') }));
    expect(error.message).toMatch(/a client certificate without its key: set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/);
  });

  it('refuses TEMPORAL_TLS_DISABLE_HOST_VERIFICATION, which the TypeScript SDK would ignore', () => {
    expect(thrownBackfillError(() => resolve({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).message).toMatch(/not supported.*TEMPORAL_TLS_SERVER_NAME/);
  });

  it('refuses a profile that the file does not have, listing those it has', () => {
    const error = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') }, { profile: 'staging' }));
    expect(error.message).toBe(`--profile 'staging' is not a profile of ${join(dir, 'temporal.toml')} (its profiles: default, cloud, plain, meta): fix the name, or add [profile.staging] to the file`);
    expect(thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml'), TEMPORAL_PROFILE: 'staging' })).message).toMatch(/^TEMPORAL_PROFILE 'staging'/);
  });

  it('refuses a profile when there is no config file at all', () => {
    const error = thrownBackfillError(() => resolve({}, { profile: 'prod' }));
    expect(error.message).toMatch(/--profile 'prod' names a profile, but there is no Temporal config file at .*temporalio\/temporal\.toml: create it/);
  });

  it('refuses a TEMPORAL_CONFIG_FILE that does not exist', () => {
    const error = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'nope.toml') }));
    expect(error.message).toBe(`TEMPORAL_CONFIG_FILE=${join(dir, 'nope.toml')} does not exist: fix the path, or unset TEMPORAL_CONFIG_FILE`);
  });

  it('names a config file that is not valid TOML', () => {
    const error = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'broken.toml') }));
    expect(error.message).toContain(`cannot read the Temporal config file ${join(dir, 'broken.toml')}`);
  });
});

describe('messages', () => {
  it('describeConnection says what was used', () => {
    const cloud = resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') }, { profile: 'cloud' });
    expect(describeConnection(cloud)).toBe(`analytics.a1b2c.tmprl.cloud:7233, namespace analytics.a1b2c, profile 'cloud' of ${join(dir, 'temporal.toml')}, TLS, API key`);
    expect(describeConnection(localConnection('127.0.0.1:7233'))).toBe('127.0.0.1:7233, namespace default');
  });

  it('an unreachable server: the address, namespace and profile tried, and how to change them', () => {
    const settings = resolve({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml') });
    const error = connectionFailure(settings, new Error('Failed to connect before the deadline'));
    expect(error.code).toBe('server_unavailable');
    expect(error.message).toContain(`temporal.internal:7233, namespace analytics, profile 'default' of ${join(dir, 'temporal.toml')}`);
    expect(error.message).toContain('Failed to connect before the deadline');
    expect(error.message).toMatch(/--address and --namespace \(or TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE\), edit profile 'default' in .*, or choose a profile with --profile/);
  });

  it('refused credentials point at the API key and client certificate', () => {
    const denied = Object.assign(new Error('16 UNAUTHENTICATED: invalid API key'), { code: 16 });
    expect(connectionFailure(resolve({ TEMPORAL_API_KEY: 'k' }), denied).message).toMatch(/refused these credentials.*TEMPORAL_API_KEY/);
  });

  it('a TLS failure says how to turn TLS off or trust the server', () => {
    const error = connectionFailure(resolve({ TEMPORAL_TLS: 'true' }), new Error('tls handshake eof'));
    expect(error.message).toMatch(/TLS handshake .* failed.*TEMPORAL_TLS=false.*TEMPORAL_TLS_SERVER_CA_CERT_PATH/);
    // A TLS client against a plaintext server only times out: the message still points at TLS.
    const timeout = new Error('Failed to connect before the deadline');
    expect(connectionFailure(resolve({ TEMPORAL_TLS: 'true' }), timeout).message).toMatch(/cannot reach .*; TLS is on: a server without TLS needs TEMPORAL_TLS=false/);
    expect(connectionFailure(resolve(), timeout).message).not.toMatch(/TLS/);
  });

  it('openConnection to a port nobody listens on fails with the address and the fix', async () => {
    const settings = resolve({ TEMPORAL_ADDRESS: '127.0.0.1:1' });
    const error = await openConnection(settings, 300).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BackfillError);
    expect((error as BackfillError).message).toMatch(/^cannot reach the Temporal server \(127\.0\.0\.1:1, namespace default\).*start one with 'backfill dev'/);
  });
});

/** A fake operator service holding custom search attributes, as the server reports them. */
function operator(custom: Record<string, number>, options: { listDenied?: boolean; addDenied?: boolean } = {}) {
  const added: Array<Record<string, number>> = [];
  const denied = () => Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), { code: 7 });
  return {
    added,
    connection: {
      operatorService: {
        listSearchAttributes: async () => {
          if (options.listDenied) throw denied();
          return { customAttributes: { ...custom } };
        },
        addSearchAttributes: async (request: { searchAttributes?: Record<string, number> | null }) => {
          if (options.addDenied) throw denied();
          added.push({ ...request.searchAttributes });
          Object.assign(custom, request.searchAttributes);
          return {};
        },
      },
    } as unknown as Parameters<typeof registerSearchAttributes>[0],
  };
}

const { IndexedValueType } = proto.temporal.api.enums.v1;
const KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

describe('secrets stay out of the messages', () => {
  it('a config file that is not valid TOML is named with its line and column, never its text', () => {
    const file = join(dir, 'secret-broken.toml');
    writeFileSync(file, '[profile.prod]\naddress = "temporal.example.com:7233"\napi_key = "sk-live-VERYSECRET"\nnamespace = prod\n');
    const error = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: file }, { profile: 'prod' }));
    expect(error.message).toContain(`cannot read the Temporal config file ${file} (not valid TOML at line 4, column 13)`);
    expect(error.message).not.toContain('VERYSECRET');
    expect(error.message).not.toContain('api_key');
  });

  it('an API key gRPC cannot send (a CRLF secret file) is refused, naming the variable, not the key', () => {
    const error = thrownBackfillError(() => resolve({ TEMPORAL_API_KEY: 'sk-APIKEY-SECRET\r', TEMPORAL_TLS: 'false' }));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toMatch(/^TEMPORAL_API_KEY holds a character gRPC cannot send .*carriage return/);
    expect(error.message).not.toContain('APIKEY-SECRET');
  });

  it('an api_key of a profile gRPC cannot send is refused, naming the key and the profile', () => {
    const file = join(dir, 'secret-cr.toml');
    writeFileSync(file, '[profile.default]\naddress = "a:7233"\napi_key = "sk-FILE-SECRET\\r"\n');
    const error = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: file }));
    expect(error.message).toContain(`api_key of profile 'default' in ${file} holds a character gRPC cannot send`);
    expect(error.message).not.toContain('FILE-SECRET');
  });

  it('a gRPC metadata value gRPC cannot send is refused, naming the variable or the grpc_meta key, not the value', () => {
    const variable = thrownBackfillError(() => resolve({ TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer sk-META-SECRET\r' }));
    expect(variable.message).toMatch(/^TEMPORAL_GRPC_META_AUTHORIZATION \(gRPC header 'authorization'\) holds a character gRPC cannot send/);
    expect(variable.message).not.toContain('META-SECRET');
    const file = join(dir, 'meta-cr.toml');
    writeFileSync(file, '[profile.default]\naddress = "a:7233"\n[profile.default.grpc_meta]\nx-token = "tok-FILE-SECRET\\u0007"\n');
    const profile = thrownBackfillError(() => resolve({ TEMPORAL_CONFIG_FILE: file }));
    expect(profile.message).toContain(`grpc_meta 'x-token' of profile 'default' in ${file} (gRPC header 'x-token') holds a character gRPC cannot send`);
    expect(profile.message).not.toContain('FILE-SECRET');
  });

  it('an error derived from the connection is printed without the API key or the metadata values', () => {
    const settings = { ...localConnection('127.0.0.1:1'), apiKey: true, options: { address: '127.0.0.1:1', apiKey: 'sk-APIKEY-SECRET', metadata: { authorization: 'Bearer sk-META-SECRET' } } };
    const quoting = new Error('Metadata string value "Bearer sk-META-SECRET\r" contains illegal characters; key sk-APIKEY-SECRET');
    const failure = connectionFailure(settings, quoting);
    expect(failure.message).not.toMatch(/APIKEY-SECRET|META-SECRET/);
    expect(failure.message).toContain('[redacted]');
  });

  it('the light status path does not let gRPC quote a header value it refuses: it leaves status to the SDK client', async () => {
    const { lightStatus } = await import('../../client/light-status.ts');
    const settings = { ...localConnection('127.0.0.1:1'), options: { address: '127.0.0.1:1', metadata: { authorization: 'Bearer sk-META-SECRET\r' } } };
    await expect(lightStatus(settings, 'b1')).resolves.toBeNull();
  });
});

describe('search attributes', () => {
  it('setup adds the missing ones as Keyword and tells which existed; a second run adds nothing', async () => {
    const fake = operator({ BackfillId: KEYWORD, Other: IndexedValueType.INDEXED_VALUE_TYPE_INT });
    expect(await registerSearchAttributes(fake.connection, 'ns')).toEqual({ namespace: 'ns', added: ['BackfillNode', 'BackfillStatus'], existing: ['BackfillId'] });
    expect(fake.added).toEqual([{ BackfillNode: KEYWORD, BackfillStatus: KEYWORD }]);
    expect(await registerSearchAttributes(fake.connection, 'ns')).toEqual({ namespace: 'ns', added: [], existing: ['BackfillId', 'BackfillNode', 'BackfillStatus'] });
    expect(fake.added).toHaveLength(1);
  });

  it('setup without admin rights says so, and how to add them on Temporal Cloud', async () => {
    const fake = operator({}, { addDenied: true });
    const error = await registerSearchAttributes(fake.connection, 'ns').then(
      () => new Error('expected a failure'),
      (e: unknown) => e as BackfillError,
    );
    expect(error).toBeInstanceOf(BackfillError);
    expect(error.message).toMatch(/needs admin rights/);
    expect(error.message).toMatch(/temporal operator search-attribute create --namespace ns --name BackfillId --type Keyword/);
    expect(error.message).toMatch(/Temporal Cloud.*tcld.*Cloud UI/);
  });

  it('a search attribute of another type is reported, not silently kept', async () => {
    const fake = operator({ BackfillId: IndexedValueType.INDEXED_VALUE_TYPE_TEXT });
    await expect(registerSearchAttributes(fake.connection, 'ns')).rejects.toThrow(/BackfillId is Text; backfill needs Keyword/);
    expect(fake.added).toEqual([]);
  });

  it('checkSearchAttributes returns null when listing is not permitted', async () => {
    expect(await checkSearchAttributes(operator({}, { listDenied: true }).connection, 'ns')).toBeNull();
    expect(await checkSearchAttributes(operator({ BackfillNode: KEYWORD }).connection, 'ns')).toEqual({
      missing: ['BackfillId', 'BackfillStatus'],
      existing: ['BackfillNode'],
      wrongType: [],
    });
  });

  it('requireSearchAttributes names backfill setup when some are missing, and lets through what it cannot see', async () => {
    await expect(requireSearchAttributes(operator({ BackfillId: KEYWORD }).connection, 'ns')).rejects.toThrow(
      /namespace ns lacks the search attributes BackfillNode, BackfillStatus .*run 'backfill setup'/,
    );
    expect(await requireSearchAttributes(operator({}, { listDenied: true }).connection, 'ns')).toBe(false);
    expect(await requireSearchAttributes(operator({ BackfillId: KEYWORD, BackfillNode: KEYWORD, BackfillStatus: KEYWORD }).connection, 'ns')).toBe(true);
  });

  it('recognises the servers\' errors for an unregistered search attribute, also wrapped', () => {
    // SQL visibility (the dev server), then Elasticsearch.
    expect(unregisteredAttribute(new Error('3 INVALID_ARGUMENT: Namespace default has no mapping defined for search attribute BackfillId'))).toBe('BackfillId');
    expect(unregisteredAttribute(new Error('Failed to start Workflow', { cause: new Error('search attribute BackfillNode is not defined') }))).toBe('BackfillNode');
    expect(unregisteredAttribute(new Error('workflow execution already started'))).toBeUndefined();
  });

  it('a rejected attribute: setup is missing, or was just run and is not in effect yet', () => {
    expect(rejectedAttribute('ns', 'BackfillId', false).message).toMatch(/lacks the search attribute BackfillId .*'backfill setup'/);
    expect(rejectedAttribute('ns', 'BackfillId', true).message).toMatch(/registered, but the server does not apply it yet.*start again in a moment/);
  });
});
