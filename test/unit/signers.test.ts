import { describe, expect, it } from 'vitest';
import { parseAllowedSigners, parseSignerTime, signersOfKey, SignersError } from '../../core/signers.ts';

const KEY = `AAAAC3NzaC1lZDI1NTE5AAAAI${'C'.repeat(43)}`;
const OTHER = `AAAAC3NzaC1lZDI1NTE5AAAAI${'D'.repeat(43)}`;

const refusal = (text: string) => {
  try {
    parseAllowedSigners(text);
  } catch (error) {
    expect(error).toBeInstanceOf(SignersError);
    return error as SignersError;
  }
  throw new Error('expected a SignersError');
};

describe('parseAllowedSigners', () => {
  it("reads git's format: principals, options, key type, key and a comment; skips blanks and comments", () => {
    const text = [
      '# approvers',
      '',
      `alice@example.com ssh-ed25519 ${KEY} alice's laptop`,
      `  bob@example.com,robert@example.com namespaces="git,backfill",valid-after="20240101",valid-before="202501011230Z" ssh-ed25519 ${OTHER}`,
    ].join('\n');
    expect(parseAllowedSigners(text)).toEqual([
      { principals: ['alice@example.com'], key: KEY, line: 3 },
      {
        principals: ['bob@example.com', 'robert@example.com'],
        key: OTHER,
        namespaces: ['git', 'backfill'],
        validAfter: Date.parse('2024-01-01T00:00:00Z'),
        validBefore: Date.parse('2025-01-01T12:30:00Z'),
        line: 4,
      },
    ]);
    expect(parseAllowedSigners('\r\n# only a comment\r\n')).toEqual([]);
  });

  it('refuses what it cannot honour, naming the line and the fix', () => {
    expect(refusal(`alice@example.com ssh-rsa ${KEY}`).message).toBe('line 1: key type ssh-rsa is not accepted: approvals are signed with ssh-ed25519 keys (ssh-keygen -t ed25519)');
    expect(refusal(`alice@example.com ecdsa-sha2-nistp256 ${KEY}`).message).toMatch(/ecdsa-sha2-nistp256 is not accepted/);
    expect(refusal(`\n*@example.com ssh-ed25519 ${KEY}`).message).toMatch(/^line 2: principal '\*@example.com' must be a plain name/);
    expect(refusal('alice@example.com').message).toMatch(/needs principals, a key type and a key/);
    expect(refusal('alice@example.com ssh-ed25519').message).toMatch(/needs a key type and a key/);
    expect(refusal(`alice@example.com ssh-ed25519 ${KEY.slice(0, -1)}`).message).toMatch(/key is not valid: copy the key from the signer's .pub file whole/);
    expect(refusal(`alice@example.com cert-authority ssh-ed25519 ${KEY}`).message).toMatch(/cert-authority is not supported/);
    expect(refusal(`alice@example.com no-touch-required ssh-ed25519 ${KEY}`).message).toMatch(/option 'no-touch-required' is not supported/);
    expect(refusal(`alice@example.com valid-after="yesterday" ssh-ed25519 ${KEY}`).message).toMatch(/valid-after="yesterday" is not a time: write YYYYMMDD/);
    expect(refusal(`alice@example.com namespaces="git ssh-ed25519 ${KEY}`).message).toMatch(/unclosed double quote/);
    expect(refusal(`ok@example.com ssh-ed25519 ${KEY}\nbad`).line).toBe(2);
  });
});

describe('parseSignerTime', () => {
  it('reads dates and times as UTC, and refuses impossible ones', () => {
    expect(parseSignerTime('20240229')).toBe(Date.parse('2024-02-29T00:00:00Z'));
    expect(parseSignerTime('202402291230')).toBe(Date.parse('2024-02-29T12:30:00Z'));
    expect(parseSignerTime('20240229123059Z')).toBe(Date.parse('2024-02-29T12:30:59Z'));
    for (const bad of ['20230229', '20241301', '202401012400', '202401011260', '2024', '2024-01-01']) expect(parseSignerTime(bad), bad).toBeUndefined();
  });
});

describe('signersOfKey', () => {
  it('finds every line of a key', () => {
    const signers = parseAllowedSigners(`a@x ssh-ed25519 ${KEY}\nb@x ssh-ed25519 ${OTHER}\nc@x ssh-ed25519 ${KEY}`);
    expect(signersOfKey(signers, KEY).map((s) => s.principals[0])).toEqual(['a@x', 'c@x']);
    expect(signersOfKey(signers, 'nope')).toEqual([]);
  });
});
