/**
 * Signs an approval (or a start) on the operator's machine the way git signs commits with SSH
 * keys: `ssh-keygen -Y sign -n backfill -f <key>`, the text on its standard input and the
 * signature on its standard output. ssh-keygen does the key handling, so a key in ssh-agent
 * (give the .pub file) and a passphrase (asked on the terminal) work as they do for git.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BackfillError } from '../core/errors.ts';
import { SIGNATURE_NAMESPACE, signedText, type SignedSubject } from '../core/approval.ts';

export type SignedMessage = { text: string; signature: string };

export type SignOptions = {
  /** The private key, or its .pub when the private key is in ssh-agent (as git's user.signingKey). */
  keyFile: string;
  /** The ssh-keygen to run (default: the one on PATH). */
  sshKeygen?: string;
  /** Tests only: another SSHSIG namespace, to see it refused. */
  namespace?: string;
};

/** Runs ssh-keygen -Y sign over `text`; resolves to the armored signature. */
export function sshSign(text: string, options: SignOptions): Promise<string> {
  if (!existsSync(options.keyFile)) {
    return Promise.reject(new BackfillError('invalid_argument', `the signing key ${options.keyFile} does not exist: give your ssh-ed25519 key (e.g. ~/.ssh/id_ed25519, or its .pub when the key is in ssh-agent)`, 'sign-key'));
  }
  return new Promise((resolve, reject) => {
    // stderr inherits the terminal: ssh-keygen asks for a passphrase there.
    const child = spawn(options.sshKeygen ?? 'ssh-keygen', ['-Y', 'sign', '-n', options.namespace ?? SIGNATURE_NAMESPACE, '-f', options.keyFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(new BackfillError('invalid_argument', error.code === 'ENOENT' ? 'ssh-keygen was not found: install OpenSSH (8.2 or later) to sign' : `ssh-keygen failed: ${error.message}`, 'sign-key')),
    );
    child.once('close', (code) => {
      if (code === 0 && out.includes('-----BEGIN SSH SIGNATURE-----')) return resolve(out);
      const why = err.trim().split('\n').filter((l) => !/^Signing data on standard input/.test(l)).join('; ') || `exit code ${code}`;
      reject(new BackfillError('invalid_argument', `ssh-keygen could not sign with ${options.keyFile}: ${why}`, 'sign-key'));
    });
    child.stdin.end(text);
  });
}

/** The canonical text of `subject`, signed. */
export async function signSubject(subject: SignedSubject, options: SignOptions): Promise<SignedMessage> {
  const text = signedText(subject);
  return { text, signature: await sshSign(text, options) };
}
