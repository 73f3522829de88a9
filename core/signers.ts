/**
 * The allowed-signers list of a policy, in the format of git's `gpg.ssh.allowedSignersFile`
 * (ssh-keygen(1), "ALLOWED SIGNERS"): one signer a line,
 *
 *   principals [options] keytype base64-key [comment]
 *
 * e.g. `alice@example.com namespaces="backfill" ssh-ed25519 AAAAC3Nza… alice's laptop`.
 * Only ssh-ed25519 keys are taken. Principals are names, not patterns: a signature is
 * attributed to the principals of the line whose key made it. Options understood:
 * `namespaces="a,b"` (the key signs only for those), `valid-after=` and `valid-before=`
 * (YYYYMMDD[HHMM[SS]], UTC with a trailing Z or not: read as UTC either way). Anything else
 * (`cert-authority`, patterns) is refused, so that a line never means less than it says.
 */
export type AllowedSigner = {
  principals: string[];
  /** The base64 of the public key blob (what follows `ssh-ed25519` in a .pub file). */
  key: string;
  namespaces?: string[];
  validAfter?: number;
  validBefore?: number;
  /** 1-based line in the list, for messages. */
  line: number;
};

export class SignersError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'SignersError';
  }
}

/** Every ssh-ed25519 public key blob is 51 bytes: its base64 is 68 characters and starts the same. */
const ED25519_KEY = /^AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/;
const PRINCIPAL = /^[^\s,*?!"]+$/;
const KEY_TYPES = /^(ssh-|ecdsa-|sk-|rsa-)/;

/** Splits a line on blanks, keeping double-quoted parts (an option's value) together. */
function tokens(line: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === ' ' || ch === '\t')) {
      if (current) out.push(current);
      current = '';
    } else current += ch;
  }
  if (quoted) throw new Error('has an unclosed double quote');
  if (current) out.push(current);
  return out;
}

/** `YYYYMMDD[HHMM[SS]][Z]` → epoch milliseconds (UTC). */
export function parseSignerTime(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?Z?$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m;
  const t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const back = new Date(t);
  return back.getUTCMonth() === Number(mo) - 1 && back.getUTCDate() === Number(d) && Number(h) < 24 && Number(mi) < 60 && Number(s) < 60 ? t : undefined;
}

function parseOptions(text: string, signer: AllowedSigner): void {
  // Options are comma-separated; a quoted value may hold commas.
  const options = text.match(/(?:[^,"]+|"[^"]*")+/g) ?? [];
  for (const option of options) {
    const eq = option.indexOf('=');
    const name = (eq < 0 ? option : option.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : option.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    if (name === 'namespaces' && value !== undefined) {
      signer.namespaces = value.split(',').map((n) => n.trim()).filter(Boolean);
    } else if ((name === 'valid-after' || name === 'valid-before') && value !== undefined) {
      const t = parseSignerTime(value);
      if (t === undefined) throw new Error(`option ${name}="${value}" is not a time: write YYYYMMDD or YYYYMMDDHHMM[SS] (UTC)`);
      if (name === 'valid-after') signer.validAfter = t;
      else signer.validBefore = t;
    } else if (name === 'cert-authority') {
      throw new Error('cert-authority is not supported: list each signer with their own ssh-ed25519 key');
    } else {
      throw new Error(`option '${option}' is not supported (namespaces="...", valid-after=..., valid-before=... are)`);
    }
  }
}

function parseLine(raw: string, line: number): AllowedSigner {
  const parts = tokens(raw);
  const [principalList, second, ...rest] = parts;
  if (!principalList || !second) throw new Error('needs principals, a key type and a key, e.g. alice@example.com ssh-ed25519 AAAAC3Nza...');
  const hasOptions = !KEY_TYPES.test(second);
  const [keyType, key] = hasOptions ? rest : [second, rest[0]];
  const principals = principalList.split(',');
  const bad = principals.find((p) => !PRINCIPAL.test(p));
  if (bad !== undefined) throw new Error(`principal '${bad}' must be a plain name such as alice@example.com (no patterns: a signature names one signer)`);
  if (keyType === undefined || key === undefined) throw new Error('needs a key type and a key after the principals, e.g. ssh-ed25519 AAAAC3Nza...');
  if (keyType !== 'ssh-ed25519') throw new Error(`key type ${keyType} is not accepted: approvals are signed with ssh-ed25519 keys (ssh-keygen -t ed25519)`);
  if (!ED25519_KEY.test(key)) throw new Error('the ssh-ed25519 key is not valid: copy the key from the signer\'s .pub file whole');
  const signer: AllowedSigner = { principals, key, line };
  if (hasOptions) parseOptions(second, signer);
  return signer;
}

/** Parses an allowed-signers list; a bad line throws a SignersError naming it and the fix. */
export function parseAllowedSigners(text: string, firstLine = 1): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const line = firstLine + i;
    try {
      signers.push(parseLine(trimmed, line));
    } catch (error) {
      throw new SignersError(line, `line ${line}: ${(error as Error).message}`);
    }
  });
  return signers;
}

/** The signers whose line holds this key (base64 blob). */
export function signersOfKey(signers: readonly AllowedSigner[], key: string): AllowedSigner[] {
  return signers.filter((s) => s.key === key);
}
