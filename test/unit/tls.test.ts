/**
 * probeTls against real TLS handshakes (a node:tls server that requires client certificates,
 * certificates made with openssl), and the message each problem it finds turns into.
 * test/integration/tls.test.ts does the same against the Temporal server.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TLSConfig } from '@temporalio/client';
import { connectionFailure, resolveConnection } from '../../client/connection.ts';
import { probeTls, type TlsProblem } from '../../client/tls-probe.ts';
import { freePort } from '../../host/dev-server.ts';
import { issueCertificate, makeCertificateAuthority, type CertificatePair } from '../certificates.ts';

let dir: string;
let trustedCa: string;
let client: CertificatePair;
let intruder: CertificatePair;
/** Requires a client certificate of the trusted CA; its certificate names localhost and 127.0.0.1. */
let secured: string;
/** The same, speaking TLS 1.2 at most. */
let secured12: string;
/** Answers in plain text. */
let plain: string;
const servers: Server[] = [];

function listen(server: Server): Promise<string> {
  servers.push(server);
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-tls-'));
  const trusted = await makeCertificateAuthority(dir, 'trusted');
  const other = await makeCertificateAuthority(dir, 'other');
  trustedCa = trusted.cert;
  const server = await issueCertificate(trusted, 'server', 'server', ['localhost', '127.0.0.1']);
  [client, intruder] = await Promise.all([issueCertificate(trusted, 'client', 'client', ['backfill']), issueCertificate(other, 'intruder', 'client', ['intruder'])]);
  const tlsServer = (maxVersion: 'TLSv1.2' | 'TLSv1.3') => {
    const created = createTlsServer({
      cert: readFileSync(server.cert),
      key: readFileSync(server.key),
      ca: readFileSync(trusted.cert),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      maxVersion,
    });
    // An accepted client gets data back, as a gRPC server sends its HTTP/2 SETTINGS.
    created.on('secureConnection', (socket) => socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])));
    created.on('tlsClientError', () => undefined);
    return created;
  };
  secured = await listen(tlsServer('TLSv1.3'));
  secured12 = await listen(tlsServer('TLSv1.2'));
  const tcpServer = createTcpServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])));
  });
  plain = await listen(tcpServer);
});

afterAll(() => {
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

const pem = (file: string) => readFileSync(file);

/** `openssl s_server` requiring a client certificate of the trusted CA, and failing the handshake on any other. */
async function openSslServer(): Promise<{ address: string; stop(): void }> {
  const port = await freePort();
  const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', join(dir, 'server.pem'), '-key', join(dir, 'server.key'), '-CAfile', trustedCa, '-Verify', '1', '-verify_return_error', '-alpn', 'h2'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  let output = '';
  await new Promise<void>((ready, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ACCEPT')) ready();
    });
    child.once('exit', (code) => fail(new Error(`openssl s_server exited (${code}): ${output}`)));
  });
  return { address: `127.0.0.1:${port}`, stop: () => child.kill() };
}
const withClient = (pair: CertificatePair): TLSConfig => ({ serverRootCACertificate: pem(trustedCa), clientCertPair: { crt: pem(pair.cert), key: pem(pair.key) } });

describe('probeTls', () => {
  it('finds nothing wrong with a certificate the server trusts, by IP or by name', async () => {
    expect(await probeTls(secured, withClient(client))).toBeNull();
    expect(await probeTls(secured.replace('127.0.0.1', 'localhost'), withClient(client))).toBeNull();
    expect(await probeTls(secured, { ...withClient(client), serverNameOverride: 'localhost' })).toBeNull();
  });

  it('tells a missing client certificate from one the server does not trust', async () => {
    expect(await probeTls(secured, { serverRootCACertificate: pem(trustedCa) })).toEqual({ kind: 'client_certificate_required' });
    // TLS 1.2 servers say it with a handshake failure.
    expect(await probeTls(secured12, { serverRootCACertificate: pem(trustedCa) })).toEqual({ kind: 'client_certificate_required' });
    expect(await probeTls(secured12, withClient(client))).toBeNull();
    // OpenSSL's own server, like Go's in Temporal, says why it refuses a certificate with a TLS alert.
    const server = await openSslServer();
    try {
      expect(await probeTls(server.address, withClient(intruder))).toEqual({ kind: 'client_certificate_rejected', alert: 'unknown CA' });
    } finally {
      server.stop();
    }
  });

  it('claims nothing when a server hangs up on a client certificate without a TLS alert (as node:tls does)', async () => {
    expect(await probeTls(secured, withClient(intruder))).toBeNull();
  });

  it('names the expected name and those in the certificate when they differ', async () => {
    expect(await probeTls(secured, { ...withClient(client), serverNameOverride: 'temporal.example.invalid' })).toEqual({
      kind: 'server_name_mismatch',
      expected: 'temporal.example.invalid',
      names: ['localhost', '127.0.0.1'],
    });
  });

  it('names the issuer of a server certificate this client does not trust', async () => {
    const problem = await probeTls(secured, { clientCertPair: { crt: pem(client.cert), key: pem(client.key) } });
    expect(problem).toMatchObject({ kind: 'server_not_trusted', issuer: 'CN=trusted test CA' });
  });

  it('sees a plaintext server when TLS is on, and a TLS server when TLS is off', async () => {
    expect(await probeTls(plain, withClient(client))).toEqual({ kind: 'server_not_tls' });
    expect(await probeTls(secured, undefined)).toEqual({ kind: 'server_requires_tls' });
    expect(await probeTls(plain, undefined)).toBeNull();
  });

  it('finds nothing where nobody listens, or at an address it cannot parse', async () => {
    expect(await probeTls('127.0.0.1:1', withClient(client))).toBeNull();
    expect(await probeTls('127.0.0.1:1', undefined)).toBeNull();
    expect(await probeTls('not an address', undefined)).toBeNull();
  });
});

describe('the message for each TLS problem', () => {
  const deadline = new Error('Failed to connect before the deadline');
  const bare = () => ({ HOME: dir, XDG_CONFIG_HOME: join(dir, 'no-config') });
  const tlsEnv = (extra: Record<string, string> = {}) =>
    resolveConnection({}, {
      ...bare(),
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: trustedCa,
      TEMPORAL_TLS_CLIENT_CERT_PATH: intruder.cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: intruder.key,
      ...extra,
    });
  const message = (problem: TlsProblem, extra?: Record<string, string>) => {
    const error = connectionFailure(tlsEnv(extra), deadline, problem);
    expect(error.code).toBe('server_unavailable');
    return error.message;
  };

  it('a missing client certificate: set the certificate and key', () => {
    expect(message({ kind: 'client_certificate_required' })).toBe(
      'the Temporal server requires a client certificate (mTLS), and none was sent (temporal.internal:7233, namespace default, TLS): set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH to a certificate and key issued by a CA the server trusts for clients',
    );
  });

  it('a rejected client certificate: which one, who issued it, and why', () => {
    expect(message({ kind: 'client_certificate_rejected', alert: 'unknown CA' })).toMatch(
      /^the Temporal server rejected the client certificate \(CN=intruder, issued by CN=other test CA\): it is not signed by a CA the server trusts \(.*\); set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/,
    );
    expect(message({ kind: 'client_certificate_rejected', alert: 'certificate revoked' })).toMatch(/client certificate \(CN=intruder, issued by CN=other test CA\): TLS alert: certificate revoked/);
  });

  it('a name mismatch: the names on both sides, and TEMPORAL_TLS_SERVER_NAME', () => {
    const problem: TlsProblem = { kind: 'server_name_mismatch', expected: 'temporal.internal', names: ['localhost', '127.0.0.1'] };
    expect(message(problem)).toBe(
      "the Temporal server's certificate does not match the name temporal.internal (it names localhost, 127.0.0.1) (temporal.internal:7233, namespace default, TLS): connect to an address the certificate names, or set TEMPORAL_TLS_SERVER_NAME to one of those names",
    );
    // When the name came from TEMPORAL_TLS_SERVER_NAME, that is what to fix.
    expect(message({ ...problem, expected: 'wrong' }, { TEMPORAL_TLS_SERVER_NAME: 'wrong' })).toMatch(/does not match the name wrong .*: set TEMPORAL_TLS_SERVER_NAME to one of those names$/);
  });

  it('an untrusted server certificate: its issuer, and the CA setting', () => {
    expect(message({ kind: 'server_not_trusted', reason: 'unable to verify the first certificate', issuer: 'CN=Platform CA' })).toBe(
      "the Temporal server's certificate (issued by CN=Platform CA) is not trusted by this client: unable to verify the first certificate (temporal.internal:7233, namespace default, TLS); set TEMPORAL_TLS_SERVER_CA_CERT_PATH to the certificate of the CA that issued it",
    );
    expect(message({ kind: 'server_not_trusted', reason: 'certificate has expired', issuer: null })).toMatch(/not trusted by this client: certificate has expired .*, or renew the server's certificate$/);
  });

  it('TLS on one side only', () => {
    expect(message({ kind: 'server_not_tls' })).toMatch(/^the Temporal server does not speak TLS, and TLS is on .*: set TEMPORAL_TLS=false, or turn TLS on at the server$/);
    const off = connectionFailure(resolveConnection({}, { ...bare(), TEMPORAL_ADDRESS: 'temporal.internal:7233' }), deadline, { kind: 'server_requires_tls' });
    expect(off.message).toMatch(/^the Temporal server speaks TLS, and TLS is off in these settings \(temporal\.internal:7233, namespace default\): set TEMPORAL_TLS=true/);
  });

  it('names the keys of the profile when the settings come from a config file', () => {
    const toml = join(dir, 'temporal.toml');
    writeFileSync(toml, `[profile.prod]\naddress = "temporal.internal:7233"\n[profile.prod.tls]\nserver_ca_cert_path = "${trustedCa}"\n`);
    const settings = resolveConnection({}, { ...bare(), TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' });
    expect(connectionFailure(settings, deadline, { kind: 'client_certificate_required' }).message).toContain(
      `set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or client_cert_path and client_key_path in [profile.prod.tls] of ${toml})`,
    );
    expect(connectionFailure(settings, deadline, { kind: 'server_name_mismatch', expected: 'a', names: ['b'] }).message).toContain(`TEMPORAL_TLS_SERVER_NAME (or server_name in [profile.prod.tls] of ${toml})`);
  });
});
