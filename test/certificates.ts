/**
 * Throw-away certificate authorities and certificates for TLS tests, made with the machine's
 * `openssl` (EC P-256 keys: quick to make; two days of validity).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const DAYS = '2';
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export type CertificateAuthority = { name: string; cert: string; key: string; dir: string };
export type CertificatePair = { cert: string; key: string };

async function openssl(args: string[]): Promise<void> {
  try {
    await exec('openssl', args, { timeout: 30_000 });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${stderr ?? (error as Error).message}`, { cause: error });
  }
}

/** A self-signed CA, `<dir>/<name>-ca.pem` and its key. */
export async function makeCertificateAuthority(dir: string, name: string): Promise<CertificateAuthority> {
  const cert = join(dir, `${name}-ca.pem`);
  const key = join(dir, `${name}-ca.key`);
  await openssl([
    'req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', DAYS, '-subj', `/CN=${name} test CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { name, cert, key, dir };
}

/**
 * A certificate signed by `ca`: for a server (`names` become its subject alternative names, DNS or
 * IP) or for a client (`names[0]` is its common name).
 */
export async function issueCertificate(ca: CertificateAuthority, file: string, use: 'server' | 'client', names: string[]): Promise<CertificatePair> {
  const cert = join(ca.dir, `${file}.pem`);
  const key = join(ca.dir, `${file}.key`);
  const csr = join(ca.dir, `${file}.csr`);
  const extensions = join(ca.dir, `${file}.ext`);
  const altNames = names.map((n) => (/^[\d.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(
    extensions,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${use === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ...(use === 'server' ? [`subjectAltName=${altNames}`] : []),
    ].join('\n'),
  );
  await openssl(['req', '-new', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', DAYS, '-extfile', extensions, '-out', cert]);
  return { cert, key };
}
