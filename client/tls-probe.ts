/**
 * Why a TLS connection to a Temporal frontend fails. The gRPC-js client (the command line)
 * reports every handshake failure as "Failed to connect before the deadline", and the Rust core
 * (workers) reports a missing client certificate as a broken pipe; so after a failed connection
 * this module shakes hands once more with node:tls, with the same settings, and names the cause.
 */
import { isIP } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { TLSConfig } from '@temporalio/client';

export type TlsProblem =
  /** The server asks for a client certificate, and none is configured. */
  | { kind: 'client_certificate_required' }
  /** The server refused the client certificate; `alert` is the TLS alert it sent, e.g. `unknown CA`. */
  | { kind: 'client_certificate_rejected'; alert: string }
  /** The server's certificate does not name `expected`; it names `names`. */
  | { kind: 'server_name_mismatch'; expected: string; names: string[] }
  /** The server's certificate is not issued by a CA this client trusts (or is expired): `reason` is OpenSSL's. */
  | { kind: 'server_not_trusted'; reason: string; issuer: string | null }
  /** TLS is on, and the server answers in plain text. */
  | { kind: 'server_not_tls' }
  /** TLS is off, and the server speaks TLS. */
  | { kind: 'server_requires_tls' };

/** TLS alerts a server sends about a client certificate, by the OpenSSL error code Node gives them. */
const CLIENT_CERTIFICATE_ALERTS: Readonly<Record<string, string>> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'certificate required',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'unknown CA',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'bad certificate',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'certificate expired',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: 'certificate revoked',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: 'certificate unknown',
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: 'unsupported certificate',
  ERR_SSL_TLSV1_ALERT_ACCESS_DENIED: 'access denied',
};

/** How TLS 1.2 servers answer a missing client certificate (and, when one was sent, other mismatches too: then it says nothing sure). */
const HANDSHAKE_FAILURE = 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE';

/** What Node calls a server certificate it cannot verify (its `code`, from OpenSSL's verify errors). */
const UNTRUSTED_SERVER = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
]);

/** A plaintext server's answer to a ClientHello, as OpenSSL reads it. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_RECORD_LAYER_FAILURE']);

/** The HTTP/2 client preface: a gRPC server that accepted the handshake answers it with its SETTINGS. */
const HTTP2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

type Target = { host: string; port: number };

function parseAddress(address: string): Target | null {
  try {
    const url = new URL(`http://${address}`);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 7233 };
  } catch {
    return null;
  }
}

/** Names in a certificate's subjectAltName (`DNS:a, IP Address:1.2.3.4`), without their prefixes. */
function altNames(subjectaltname: string | undefined): string[] {
  return (subjectaltname ?? '').split(', ').filter(Boolean).map((entry) => entry.replace(/^(DNS|IP Address):/, ''));
}

/** The issuer of the server's certificate, read in a handshake that verifies nothing and sends no client certificate. */
function serverIssuer(target: Target, servername: string | undefined, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: target.host, port: target.port, ALPNProtocols: ['h2'], rejectUnauthorized: false, ...(servername ? { servername } : {}) });
    const finish = (issuer: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(issuer);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.once('secureConnect', () => {
      const { issuer } = socket.getPeerCertificate();
      finish(issuer?.CN ? `CN=${issuer.CN}` : null);
    });
    socket.once('error', () => finish(null));
    socket.once('close', () => finish(null));
  });
}

type Handshake = {
  /** The problem seen; null when the server accepted the connection; 'unknown' for anything else (unreachable, timed out, closed). */
  problem: TlsProblem | null | 'unknown';
  /** The server answered in TLS (a certificate, or an alert about ours). */
  spokeTls: boolean;
};

/** Runs one TLS handshake and sends the HTTP/2 preface. */
function handshake(target: Target, options: ConnectionOptions, expected: string, timeoutMs: number): Promise<Handshake> {
  return new Promise((resolve) => {
    let settled = false;
    let spokeTls = false;
    const socket = tlsConnect({ host: target.host, port: target.port, ALPNProtocols: ['h2'], ...options });
    const finish = (problem: Handshake['problem']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ problem, spokeTls });
    };
    const timer = setTimeout(() => finish('unknown'), timeoutMs);
    socket.once('secureConnect', () => {
      spokeTls = true;
      // Under TLS 1.3 the server judges the client certificate after the client has finished: its verdict comes with the first read.
      socket.write(HTTP2_PREFACE);
    });
    socket.once('data', () => finish(null));
    socket.once('error', (error: Error & { code?: string; reason?: string; cert?: { subjectaltname?: string } }) => {
      const code = error.code ?? '';
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
        finish({ kind: 'server_name_mismatch', expected, names: altNames(error.cert?.subjectaltname) });
      } else if (UNTRUSTED_SERVER.has(code)) {
        finish({ kind: 'server_not_trusted', reason: error.message, issuer: null });
      } else if (code in CLIENT_CERTIFICATE_ALERTS || code === HANDSHAKE_FAILURE) {
        spokeTls = true;
        if (options.cert === undefined) finish({ kind: 'client_certificate_required' });
        else finish(code === HANDSHAKE_FAILURE ? 'unknown' : { kind: 'client_certificate_rejected', alert: CLIENT_CERTIFICATE_ALERTS[code]! });
      } else if (NOT_TLS.has(code)) {
        finish({ kind: 'server_not_tls' });
      } else {
        finish('unknown');
      }
    });
    socket.once('close', () => finish('unknown'));
  });
}

/**
 * Shakes hands with the frontend at `address` as a client with `tls` would (or, with TLS off,
 * checks whether the server speaks TLS). Null when it finds no TLS problem: the server accepted,
 * could not be reached, or failed in a way this probe does not know.
 */
export async function probeTls(address: string, tls: TLSConfig | undefined, timeoutMs = 3000): Promise<TlsProblem | null> {
  const target = parseAddress(address);
  if (target === null) return null;
  if (tls === undefined) {
    // Any certificate will do: the question is only whether the server speaks TLS.
    const { spokeTls } = await handshake(target, { rejectUnauthorized: false }, target.host, timeoutMs);
    return spokeTls ? { kind: 'server_requires_tls' } : null;
  }
  const expected = tls.serverNameOverride ?? target.host;
  const options: ConnectionOptions = {
    ...(isIP(expected) === 0 ? { servername: expected } : {}),
    // Node checks the certificate against `servername`, else `host`: the name gRPC checks too.
    checkServerIdentity: (_host, cert) => checkServerIdentity(expected, cert),
    ...(tls.serverRootCACertificate ? { ca: Buffer.from(tls.serverRootCACertificate) } : {}),
    ...(tls.clientCertPair ? { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) } : {}),
  };
  const { problem } = await handshake(target, options, expected, timeoutMs);
  if (problem === 'unknown') return null;
  if (problem?.kind === 'server_not_trusted') return { ...problem, issuer: await serverIssuer(target, options.servername, timeoutMs) };
  return problem;
}
