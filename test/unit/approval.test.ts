/**
 * Approvals that cannot be faked: keys made with ssh-keygen in the test, signatures made with
 * ssh-keygen -Y sign (client/sign.ts), verified natively (activities/approval.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  backfillIdOfWorkflow,
  carryHash,
  checkRunFollowed,
  checkSignedStart,
  checkStartOnce,
  decideApproval,
  FIRST_RUN,
  parseSignedText,
  planHash,
  runsUnknownCheck,
  signedText,
  type SignatureCheck,
  type SignedSubject,
  type VerifiedSignature,
} from '../../core/approval.ts';
import { parseAllowedSigners, type AllowedSigner } from '../../core/signers.ts';
import { RangeSet } from '../../core/ranges.ts';
import { resolveSpec } from '../../core/spec.ts';
import { createApprovalActivities, parseSshSignature, verifySignedText, type VerifyInput } from '../../activities/approval.ts';
import { signSubject, sshSign } from '../../client/sign.ts';

let dir: string;
const key = (name: string) => join(dir, name);
const pub = (name: string) => readFileSync(`${key(name)}.pub`, 'utf8').trim().split(/\s+/);

function keygen(name: string, type: 'ed25519' | 'rsa'): void {
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', key(name)]);
}

const spec = resolveSpec({ name: 'revenue', partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-01' }, nodes: [{ id: 'orders', transform: 'noop' }] });
const plan = planHash({ spec, range: {} });
const NOW = Date.parse('2024-05-01T12:00:00Z');

const subject = (overrides: Partial<SignedSubject> = {}): SignedSubject => ({
  action: 'approve',
  backfillId: 'revenue-2024',
  namespace: 'default',
  planHash: plan,
  reason: 'finance asked for the restated January',
  signedAt: '2024-05-01T11:59:00.000Z',
  ...overrides,
});

let signers: AllowedSigner[];
const expected = { action: 'approve' as const, backfillId: 'revenue-2024', namespace: 'default', planHash: plan };
const input = (signed: { text: string; signature: string }, more: Partial<VerifyInput> = {}): VerifyInput => ({
  ...signed,
  expected,
  allowedSigners: signers,
  now: NOW,
  ...more,
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-approval-'));
  keygen('alice', 'ed25519');
  keygen('bob', 'ed25519');
  keygen('mallory', 'ed25519');
  keygen('rsa', 'rsa');
  const [aliceType, aliceKey] = pub('alice');
  const [, bobKey] = pub('bob');
  const [, rsaKey] = pub('rsa');
  signers = parseAllowedSigners(
    [
      '# the platform team',
      `alice@example.com ${aliceType} ${aliceKey} alice's laptop`,
      `bob@example.com,robert@example.com namespaces="git,backfill" ssh-ed25519 ${bobKey}`,
    ].join('\n'),
  );
  // An RSA key may be listed in a file git reads, but not in a policy.
  expect(() => parseAllowedSigners(`rsa@example.com ssh-rsa ${rsaKey}`)).toThrow(/ssh-rsa is not accepted/);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signing with ssh-keygen and verifying natively', () => {
  it('accepts a valid approval and says which principal signed', async () => {
    const signed = await signSubject(subject(), { keyFile: key('alice') });
    expect(signed.text).toBe(signedText(subject()));
    const result = await createApprovalActivities().verifySignature(input(signed));
    expect(result).toEqual({ ok: true, verified: { subject: subject(), principals: ['alice@example.com'], fingerprint: expect.stringMatching(/^SHA256:/) } });
    // The same fingerprint as ssh-keygen's own.
    const listed = execFileSync('ssh-keygen', ['-l', '-f', `${key('alice')}.pub`]).toString().split(' ')[1];
    expect(result.ok && result.verified.fingerprint).toBe(listed);
  });

  it('agrees with ssh-keygen -Y verify on the same signature', async () => {
    const signed = await signSubject(subject(), { keyFile: key('bob') });
    const file = join(dir, 'allowed_signers');
    const [, bobKey] = pub('bob');
    execFileSync('sh', ['-c', `printf '%s\\n' 'bob@example.com ssh-ed25519 ${bobKey}' > ${file}`]);
    const sigFile = join(dir, 'bob.sig');
    execFileSync('sh', ['-c', `cat > ${sigFile}`], { input: signed.signature });
    const out = execFileSync('ssh-keygen', ['-Y', 'verify', '-f', file, '-I', 'bob@example.com', '-n', 'backfill', '-s', sigFile], { input: signed.text }).toString();
    expect(out).toMatch(/Good "backfill" signature for bob@example.com/);
    expect(verifySignedText(input(signed))).toMatchObject({ ok: true, verified: { principals: ['bob@example.com', 'robert@example.com'] } });
  });

  it('verifies a key in ssh-agent when given its .pub file, as git does', async () => {
    const agent = execFileSync('ssh-agent', ['-s']).toString();
    const socket = /SSH_AUTH_SOCK=([^;]+)/.exec(agent)![1]!;
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent)![1]);
    try {
      execFileSync('ssh-add', ['-q', key('alice')], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
      const previous = process.env.SSH_AUTH_SOCK;
      process.env.SSH_AUTH_SOCK = socket;
      try {
        const signed = await signSubject(subject(), { keyFile: `${key('alice')}.pub` });
        expect(verifySignedText(input(signed)).ok).toBe(true);
      } finally {
        if (previous === undefined) delete process.env.SSH_AUTH_SOCK;
        else process.env.SSH_AUTH_SOCK = previous;
      }
    } finally {
      process.kill(pid);
    }
  });

  it('refuses a key not in the allowed signers', async () => {
    const signed = await signSubject(subject(), { keyFile: key('mallory') });
    const result = verifySignedText(input(signed));
    expect(result).toMatchObject({ ok: false, code: 'unknown_signer' });
    expect(!result.ok && result.message).toMatch(/is not among the policy's allowed signers/);
  });

  it('refuses a tampered reason', async () => {
    const signed = await signSubject(subject(), { keyFile: key('alice') });
    const tampered = signed.text.replace('finance asked for the restated January', 'finance asked for everything');
    expect(tampered).not.toBe(signed.text);
    const result = verifySignedText(input({ ...signed, text: tampered }));
    expect(result).toMatchObject({ ok: false, code: 'bad_signature' });
    expect(!result.ok && result.message).toMatch(/changed after it was signed/);
  });

  it('refuses an approval of another plan', async () => {
    const other = planHash({ spec, range: { from: Date.parse('2024-01-15T00:00:00Z') } });
    const signed = await signSubject(subject({ planHash: other }), { keyFile: key('alice') });
    const result = verifySignedText(input(signed));
    expect(result).toMatchObject({ ok: false, code: 'other_plan' });
    expect(!result.ok && result.message).toContain(`approves the plan ${other}, but this backfill runs ${plan}`);
  });

  it('refuses an approval of another backfill, another namespace or another action', async () => {
    const otherId = verifySignedText(input(await signSubject(subject({ backfillId: 'revenue-2023' }), { keyFile: key('alice') })));
    expect(otherId).toMatchObject({ ok: false, code: 'other_backfill' });
    expect(!otherId.ok && otherId.message).toMatch(/for the backfill 'revenue-2023', not 'revenue-2024'/);
    const otherNamespace = verifySignedText(input(await signSubject(subject({ namespace: 'staging' }), { keyFile: key('alice') })));
    expect(otherNamespace).toMatchObject({ ok: false, code: 'other_namespace' });
    const start = verifySignedText(input(await signSubject(subject({ action: 'start' }), { keyFile: key('alice') })));
    expect(start).toMatchObject({ ok: false, code: 'other_action' });
  });

  it('binds a resume or retry-failed to its action and the carry its run starts from: a start, the other action or another end is refused', async () => {
    const carry = carryHash({ readiness: { orders: { done: '0-9', failed: '10' } }, runs: 1 });
    const later = carryHash({ readiness: { orders: { done: '0-10', failed: '' } }, runs: 2 });
    const retry = { ...expected, action: 'retry-failed' as const, carryHash: carry };
    const signed = await signSubject(subject({ action: 'retry-failed', carryHash: carry }), { keyFile: key('alice') });
    expect(signed.text).toContain(`plan: "${plan}"\ncarry: "${carry}"\nreason: `);
    expect(verifySignedText(input(signed, { expected: retry }))).toMatchObject({ ok: true, verified: { subject: { action: 'retry-failed', carryHash: carry } } });
    // A start's signature (in every run's input, for anyone who reads the history) does not resume.
    const start = await signSubject(subject({ action: 'start' }), { keyFile: key('alice') });
    expect(verifySignedText(input(start, { expected: retry }))).toMatchObject({ ok: false, code: 'other_action', message: expect.stringMatching(/sign with backfill retry-failed --sign-key/) });
    // Nor a resume's a retry-failed, nor a retry-failed's a start.
    expect(verifySignedText(input(signed, { expected: { ...retry, action: 'resume' } }))).toMatchObject({ ok: false, code: 'other_action' });
    expect(verifySignedText(input(signed, { expected: { ...expected, action: 'start' } }))).toMatchObject({ ok: false, code: 'other_action' });
    // The same action from another end of the backfill (a later run's, or another node's failures).
    const other = verifySignedText(input(signed, { expected: { ...retry, carryHash: later } }));
    expect(other).toMatchObject({ ok: false, code: 'other_carry' });
    expect(!other.ok && other.message).toContain(`goes on from the end ${carry}, but this run starts from ${later}`);
  });

  it('refuses a signature made for another namespace (git)', async () => {
    const text = signedText(subject());
    const signature = await sshSign(text, { keyFile: key('alice'), namespace: 'git' });
    expect(parseSshSignature(signature).namespace).toBe('git');
    const result = verifySignedText(input({ text, signature }));
    expect(result).toMatchObject({ ok: false, code: 'wrong_namespace' });
    expect(!result.ok && result.message).toMatch(/namespace 'git', not 'backfill'/);
  });

  it('refuses a signature made with an RSA key', async () => {
    const signed = await signSubject(subject(), { keyFile: key('rsa') });
    expect(parseSshSignature(signed.signature).keyType).toBe('ssh-rsa');
    const result = verifySignedText(input(signed));
    expect(result).toMatchObject({ ok: false, code: 'unsupported_key' });
    expect(!result.ok && result.message).toMatch(/key of type 'ssh-rsa': approvals are signed with ssh-ed25519 keys/);
  });

  it("refuses a signer whose namespaces leave backfill out, or outside its validity", async () => {
    const [, aliceKey] = pub('alice');
    const signed = await signSubject(subject(), { keyFile: key('alice') });
    const gitOnly = parseAllowedSigners(`alice@example.com namespaces="git" ssh-ed25519 ${aliceKey}`);
    expect(verifySignedText(input(signed, { allowedSigners: gitOnly }))).toMatchObject({ ok: false, code: 'namespace_not_allowed' });
    const expired = parseAllowedSigners(`alice@example.com valid-before="20240401" ssh-ed25519 ${aliceKey}`);
    expect(verifySignedText(input(signed, { allowedSigners: expired }))).toMatchObject({ ok: false, code: 'key_not_valid' });
    const current = parseAllowedSigners(`alice@example.com valid-after="20240401",valid-before="202406011200Z" ssh-ed25519 ${aliceKey}`);
    expect(verifySignedText(input(signed, { allowedSigners: current })).ok).toBe(true);
  });

  it("shows a made-up key type or namespace, which anyone may send, bounded and escaped", () => {
    const field = (b: Buffer | string) => {
      const bytes = Buffer.from(b);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    };
    const blob = (keyType: string, namespace: string) => {
      const version = Buffer.alloc(4);
      version.writeUInt32BE(1);
      const body = [field(Buffer.concat([field(keyType), field(Buffer.alloc(32))])), field(namespace), field(''), field('sha512'), field(Buffer.concat([field('x'), field(Buffer.alloc(64))]))];
      return `-----BEGIN SSH SIGNATURE-----\n${Buffer.concat([Buffer.from('SSHSIG'), version, ...body]).toString('base64')}\n-----END SSH SIGNATURE-----`;
    };
    const junk = '\u001b]0;owned\u0007\u001b[2J' + 'K'.repeat(10_000);
    for (const [signature, code] of [[blob(junk, 'backfill'), 'unsupported_key'], [blob('ssh-ed25519', junk), 'wrong_namespace']] as const) {
      const result = verifySignedText(input({ text: 'x', signature }));
      expect(result).toMatchObject({ ok: false, code });
      const message = result.ok ? '' : result.message;
      expect(message).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
      expect(message).toContain('\\u001b]0;owned');
      expect(message.length).toBeLessThan(500);
    }
  });

  it('refuses garbage, a signature of other bytes, and a text not in canonical form', async () => {
    expect(verifySignedText(input({ text: 'x', signature: 'not a signature' }))).toMatchObject({ ok: false, code: 'malformed_signature' });
    expect(verifySignedText(input({ text: signedText(subject({ reason: 'x'.repeat(20_000) })), signature: 'x' }))).toMatchObject({ ok: false, code: 'malformed_text' });
    const broken = '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n';
    expect(verifySignedText(input({ text: 'x', signature: broken }))).toMatchObject({ ok: false, code: 'malformed_signature' });
    // A validly signed text that is not a backfill subject.
    const text = `${signedText(subject())}extra: "line"\n`;
    const signature = await sshSign(text, { keyFile: key('alice') });
    expect(verifySignedText(input({ text, signature }))).toMatchObject({ ok: false, code: 'malformed_text' });
  });

  it('names the key file when ssh-keygen cannot sign', async () => {
    await expect(sshSign('x', { keyFile: join(dir, 'missing') })).rejects.toThrow(/does not exist/);
    await expect(sshSign('x', { keyFile: join(dir, 'alice'), sshKeygen: join(dir, 'no-ssh-keygen') })).rejects.toThrow(/ssh-keygen was not found/);
  });
});

describe('the signed text', () => {
  it('renders one line a field and parses back to the same subject', () => {
    const s = subject({ reason: 'quotes " and\nnewlines' });
    const text = signedText(s);
    expect(text.split('\n')[0]).toBe('backfill signature v1');
    expect(text).toContain('reason: "quotes \\" and\\nnewlines"');
    expect(parseSignedText(text)).toEqual(s);
  });

  it("has a carry line exactly for a resume and a retry-failed", () => {
    const resume = subject({ action: 'resume', carryHash: 'sha256:abc' });
    expect(parseSignedText(signedText(resume))).toEqual(resume);
    const text = signedText(resume);
    // Without its carry line, or a start's text with one, it is not a text of its action.
    expect(parseSignedText(text.replace('carry: "sha256:abc"\n', ''))).toMatchObject({ error: expect.stringMatching(/line 6 should be 'carry: /) });
    expect(parseSignedText(text.replace('"resume"', '"start"'))).toMatchObject({ error: expect.stringMatching(/line 6 should be 'reason: /) });
    expect(parseSignedText(text.replace('action: "resume"', 'action: resume'))).toHaveProperty('error');
  });

  it("has an after-run line for a start (the run it follows), and reads a start's text of an older client without it", () => {
    const start = subject({ action: 'start', afterRun: FIRST_RUN });
    const text = signedText(start);
    expect(text.split('\n')[5]).toBe('after-run: "none"');
    expect(parseSignedText(text)).toEqual(start);
    const older = subject({ action: 'start' });
    expect(signedText(older)).not.toContain('after-run');
    expect(parseSignedText(signedText(older))).toEqual(older);
    // Another action's text has none: with one, it is not a text of its action.
    expect(parseSignedText(text.replace('"start"', '"approve"'))).toMatchObject({ error: expect.stringMatching(/line 6 should be 'reason: /) });
    expect(signedText(subject({ afterRun: 'r1' }))).not.toContain('after-run');
  });

  it("has an after-run line for a resume and a retry-failed (the run whose end is their carry) after the carry, and reads an older client's text without it", () => {
    for (const action of ['resume', 'retry-failed'] as const) {
      const goesOn = subject({ action, carryHash: 'sha256:abc', afterRun: 'r1' });
      const text = signedText(goesOn);
      expect(text.split('\n').slice(5, 7)).toEqual(['carry: "sha256:abc"', 'after-run: "r1"']);
      expect(parseSignedText(text)).toEqual(goesOn);
      const older = subject({ action, carryHash: 'sha256:abc' });
      expect(signedText(older)).not.toContain('after-run');
      expect(parseSignedText(signedText(older))).toEqual(older);
      // Before the carry line, it is not a text of its action.
      expect(parseSignedText(text.replace('carry: "sha256:abc"\nafter-run: "r1"', 'after-run: "r1"\ncarry: "sha256:abc"'))).toMatchObject({ error: expect.stringMatching(/line 6 should be 'carry: /) });
    }
  });

  it('hashes a carry by its content: key order and fields left undefined do not count, as they do not once sent', () => {
    expect(carryHash({ a: 1, b: { c: [1, 2] }, d: undefined })).toBe(carryHash(JSON.parse(JSON.stringify({ b: { c: [1, 2] }, a: 1 }))));
    expect(carryHash({ a: 1 })).not.toBe(carryHash({ a: 2 }));
  });

  it('refuses texts that are not canonical', () => {
    const text = signedText(subject());
    expect(parseSignedText(text.replace('backfill signature v1', 'v2'))).toHaveProperty('error');
    expect(parseSignedText(text.replace('"approve"', '"delete"'))).toMatchObject({ error: expect.stringMatching(/action 'delete'/) });
    expect(parseSignedText(text.replace('reason: "', 'reason:  "'))).toHaveProperty('error');
    expect(parseSignedText(`${text}\n`)).toMatchObject({ error: expect.stringMatching(/canonical/) });
    expect(parseSignedText(text.replace(/signed-at: ".*"/, 'signed-at: "yesterday"'))).toMatchObject({ error: expect.stringMatching(/not a time/) });
    expect(parseSignedText(text.replace(/plan: ".*"/, 'plan: 42'))).toMatchObject({ error: expect.stringMatching(/quoted string/) });
  });
});

describe('planHash', () => {
  it('changes with the spec, the range, what is skipped or staged; not with key order', () => {
    const base = planHash({ spec, range: {} });
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
    const reverse = (value: unknown): unknown =>
      Array.isArray(value) ? value.map(reverse) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverse(v)])) : value;
    const reordered = reverse(spec) as typeof spec;
    expect(Object.keys(reordered)).toEqual(Object.keys(spec).reverse());
    expect(planHash({ spec: reordered, range: {} })).toBe(base);
    expect(planHash({ spec, range: {}, stage: false, skip: {} })).toBe(base);
    const others = [
      planHash({ spec: { ...spec, nodes: [{ ...spec.nodes[0]!, params: { x: 1 } }] }, range: {} }),
      planHash({ spec, range: { to: Date.parse('2024-01-20T00:00:00Z') } }),
      planHash({ spec, range: {}, skip: { orders: RangeSet.of([0, 3]).toJSON() } }),
      planHash({ spec, range: {}, stage: true }),
      planHash({ spec, range: {}, canary: { partitions: 2 } }),
    ];
    expect(new Set([base, ...others]).size).toBe(6);
    // No canary given is the hash of a start without one, as before canaries were in it.
    expect(planHash({ spec, range: {}, canary: undefined })).toBe(base);
    expect(planHash({ spec, range: {}, canary: null })).toBe(base);
  });
});

describe('decideApproval', () => {
  const verified = (principals: string[], print: string, overrides: Partial<SignedSubject> = {}): VerifiedSignature => ({
    subject: subject(overrides),
    principals,
    fingerprint: print,
  });
  const alice = verified(['alice@example.com'], 'SHA256:alice');
  const bob = verified(['bob@example.com', 'robert@example.com'], 'SHA256:bob');
  const base = { now: NOW, maxAgeMs: 3_600_000 };

  it('accepts an approval by someone other than the starter', () => {
    expect(decideApproval({ ...base, approval: bob, start: verified(['alice@example.com'], 'SHA256:alice', { action: 'start' }) })).toEqual({ accepted: true, approver: 'bob@example.com' });
    expect(decideApproval({ ...base, approval: bob, start: null })).toEqual({ accepted: true, approver: 'bob@example.com' });
  });

  it('refuses self-approval: the same principal or the same key as the signed start', () => {
    const byAlice = decideApproval({ ...base, approval: alice, start: verified(['alice@example.com'], 'SHA256:alice', { action: 'start' }) });
    expect(byAlice).toMatchObject({ accepted: false, code: 'self_approval' });
    expect(!byAlice.accepted && byAlice.message).toMatch(/alice@example.com started this backfill and cannot approve it too/);
    // Another line of the list for the same person.
    expect(decideApproval({ ...base, approval: bob, start: verified(['robert@example.com'], 'SHA256:other', { action: 'start' }) })).toMatchObject({ code: 'self_approval' });
    // The same key listed under another name.
    expect(decideApproval({ ...base, approval: bob, start: verified(['carol@example.com'], 'SHA256:bob', { action: 'start' }) })).toMatchObject({ code: 'self_approval' });
    // Without a signed start, the starter's declared identity still counts.
    expect(decideApproval({ ...base, approval: alice, start: null, starterIdentity: 'alice@example.com' })).toMatchObject({ code: 'self_approval' });
  });

  it('refuses an old approval, one from the future and a signed start offered as an approval', () => {
    const old = verified(['bob@example.com'], 'SHA256:bob', { signedAt: '2024-05-01T10:00:00.000Z' });
    expect(decideApproval({ ...base, approval: old, start: null })).toMatchObject({ accepted: false, code: 'expired' });
    const future = verified(['bob@example.com'], 'SHA256:bob', { signedAt: '2024-05-01T13:00:00.000Z' });
    expect(decideApproval({ ...base, approval: future, start: null })).toMatchObject({ accepted: false, code: 'from_the_future' });
    const start = verified(['bob@example.com'], 'SHA256:bob', { action: 'start' });
    expect(decideApproval({ ...base, approval: start, start: null })).toMatchObject({ accepted: false, code: 'wrong_action' });
  });
});

describe('checkSignedStart', () => {
  const verified = (signedAt: string): VerifiedSignature => ({ subject: subject({ action: 'resume', carryHash: 'sha256:abc', signedAt }), principals: ['alice@example.com'], fingerprint: 'SHA256:alice' });
  const clock = { now: NOW, maxAgeMs: 3_600_000 };
  const request = { reason: ' finance asked for the restated January ' };

  it("lets a signed start, resume or retry-failed count with its signed reason, within the policy's maximum age", () => {
    const check = { ok: true as const, verified: verified('2024-05-01T11:10:00.000Z') };
    expect(checkSignedStart(check, request, clock)).toBe(check);
    const noReason = { ok: true as const, verified: { ...verified('2024-05-01T11:10:00.000Z'), subject: subject({ reason: '' }) } };
    expect(checkSignedStart(noReason, {}, clock)).toBe(noReason);
  });

  it('refuses one whose request gives another reason than it signed (the audit trail keeps the request\'s)', () => {
    expect(checkSignedStart({ ok: true, verified: verified('2024-05-01T11:10:00.000Z') }, { reason: 'a reason of my own' }, clock)).toMatchObject({
      ok: false,
      code: 'other_reason',
      message: 'the signed resume signs the reason "finance asked for the restated January", but its request gives "a reason of my own": the audit trail keeps the reason that was signed; sign again with the reason you give',
    });
    expect(checkSignedStart({ ok: true, verified: verified('2024-05-01T11:10:00.000Z') }, {}, clock)).toMatchObject({ ok: false, code: 'other_reason' });
  });

  it('refuses one older than the maximum age (copied from an old history) or dated ahead of the clock', () => {
    expect(checkSignedStart({ ok: true, verified: verified('2024-05-01T10:59:00.000Z') }, request, clock)).toMatchObject({
      ok: false,
      code: 'expired',
      message: expect.stringMatching(/^the signed resume was signed at 2024-05-01T10:59:00.000Z, longer ago than the policy allows \(approval.maxSignatureAge\)/),
    });
    expect(checkSignedStart({ ok: true, verified: verified('2024-05-01T12:06:00.000Z') }, request, clock)).toMatchObject({ ok: false, code: 'from_the_future' });
  });

  it('leaves a refused check as it is', () => {
    const refused = { ok: false as const, code: 'unknown_signer', message: 'no' };
    expect(checkSignedStart(refused, request, clock)).toBe(refused);
  });
});

describe('a signed start admits one backfill, once', () => {
  const ok = (overrides: Partial<SignedSubject> = {}): SignatureCheck => ({
    ok: true,
    verified: { subject: subject({ action: 'start', afterRun: FIRST_RUN, ...overrides }), principals: ['alice@example.com'], fingerprint: 'SHA256:alice' },
  });
  const own = { workflowId: 'backfill/revenue-2024' };

  it('reads the backfill id of a backfill workflow id', () => {
    expect(backfillIdOfWorkflow('backfill/revenue-2024')).toBe('revenue-2024');
    expect(backfillIdOfWorkflow('backfill/')).toBeNull();
    expect(backfillIdOfWorkflow('revenue-2024')).toBeNull();
  });

  it('counts only for the backfill whose workflow runs it, whatever its input names', () => {
    const check = ok();
    expect(checkStartOnce(check, own)).toBe(check);
    expect(checkStartOnce(check, { workflowId: 'backfill/revenue-2024-copy' })).toEqual({
      ok: false,
      code: 'other_backfill',
      message:
        "the signed start is for backfill 'revenue-2024', but this workflow is backfill 'revenue-2024-copy': a signature admits only the backfill it was signed for; sign the start of this backfill (backfill start --id <its id> --sign-key <your key>)",
    });
    expect(checkStartOnce(check, { workflowId: 'by-hand' })).toMatchObject({ ok: false, code: 'other_backfill', message: expect.stringContaining("this workflow's id 'by-hand' is not a backfill's") });
    // A resume's too.
    const resume = ok({ action: 'resume', carryHash: 'sha256:abc', afterRun: 'r1' });
    expect(checkStartOnce(resume, own)).toBe(resume);
    expect(checkStartOnce(resume, { workflowId: 'backfill/other' })).toMatchObject({ ok: false, code: 'other_backfill', message: expect.stringMatching(/^the signed resume is for backfill 'revenue-2024'/) });
  });

  it("refuses a start signed by an older client (no after-run), saying to sign again with this release's", () => {
    expect(checkStartOnce(ok({ afterRun: undefined }), own)).toEqual({
      ok: false,
      code: 'old_signature',
      message:
        "the signed start was made by an older backfill client: its text does not name the run of backfill 'revenue-2024' it follows (after-run), so a copy of it could start the backfill again; nothing ran: sign the start again with this release's client (backfill start <spec> --id revenue-2024 --rerun --sign-key <your key>)",
    });
  });

  it('admits a start once: after the run it was signed to follow, and no later one', () => {
    const first = ok();
    // The first run of the id: the server lists only this run (or not yet even it).
    expect(checkRunFollowed(first, [], 'mine')).toBe(first);
    expect(checkRunFollowed(first, [{ runId: 'mine', startedAt: 5 }], 'mine')).toBe(first);
    // Started again under the same id after it ran.
    expect(checkRunFollowed(first, [{ runId: 'r1', startedAt: Date.parse('2024-05-01T11:00:00Z') }, { runId: 'mine', startedAt: 9 }], 'mine')).toEqual({
      ok: false,
      code: 'already_used',
      message:
        "the signed start was made for the first run of backfill 'revenue-2024', but it already ran (run r1, started 2024-05-01T11:00:00.000Z): a signature starts one run, once; to run it again, sign its start again (backfill start <spec> --id revenue-2024 --rerun --sign-key <your key>)",
    });
    // A --rerun signed after run r1 counts after r1 (the latest), not after r2.
    const rerun = ok({ afterRun: 'r1' });
    expect(checkRunFollowed(rerun, [{ runId: 'r1', startedAt: 1 }, { runId: 'r0', startedAt: 0 }, { runId: 'mine', startedAt: 3 }], 'mine')).toBe(rerun);
    expect(checkRunFollowed(rerun, [{ runId: 'r1', startedAt: 1 }, { runId: 'r2', startedAt: 2 }], 'mine')).toMatchObject({
      ok: false,
      code: 'already_used',
      message: expect.stringMatching(/^the signed start was made for the run of backfill 'revenue-2024' after run r1, but it already ran \(run r2, /),
    });
    expect(checkRunFollowed(rerun, [], 'mine')).toMatchObject({ ok: false, code: 'other_run', message: expect.stringContaining('the server lists no earlier run of it') });
  });

  it('leaves a refused check as it is', () => {
    const refused = { ok: false as const, code: 'expired', message: 'old' };
    expect(checkStartOnce(refused, own)).toBe(refused);
    expect(checkRunFollowed(refused, [{ runId: 'r1', startedAt: 1 }], 'mine')).toBe(refused);
  });

  it("refuses a resume or retry-failed signed by an older client (no after-run), naming its own command to sign again", () => {
    expect(checkStartOnce(ok({ action: 'resume', carryHash: 'sha256:abc', afterRun: undefined }), own)).toEqual({
      ok: false,
      code: 'old_signature',
      message:
        "the signed resume was made by an older backfill client: its text does not name the run of backfill 'revenue-2024' it follows (after-run), so a copy of it could start the backfill again; nothing ran: sign the resume again with this release's client (backfill resume revenue-2024 --sign-key <your key>)",
    });
    expect(checkStartOnce(ok({ action: 'retry-failed', carryHash: 'sha256:abc', afterRun: undefined }), own)).toMatchObject({
      code: 'old_signature',
      message: expect.stringContaining('(backfill retry-failed revenue-2024 --sign-key <your key>)'),
    });
  });

  it('admits a resume or retry-failed once: after the run whose end is its carry, with no admitted run after it', () => {
    for (const action of ['resume', 'retry-failed'] as const) {
      const signed = ok({ action, carryHash: 'sha256:abc', afterRun: 'r1' });
      const r0 = { runId: 'r0', startedAt: 0 };
      const r1 = { runId: 'r1', startedAt: 1 };
      // The latest other run is the one it goes on from.
      expect(checkRunFollowed(signed, [r0, r1, { runId: 'mine', startedAt: 3 }], 'mine')).toBe(signed);
      // Runs after it that the policy refused at admission ran nothing (the client goes on from r1 past them).
      expect(checkRunFollowed(signed, [r0, r1, { runId: 'r2', startedAt: 2, refused: true }, { runId: 'r3', startedAt: 3, refused: true }], 'mine')).toBe(signed);
      // Its copy, started again after the run it admitted: that run was admitted after r1.
      expect(checkRunFollowed(signed, [r0, r1, { runId: 'r2', startedAt: Date.parse('2024-05-01T11:00:00Z') }, { runId: 'r3', startedAt: Date.parse('2024-05-01T12:00:00Z'), refused: true }], 'mine')).toEqual({
        ok: false,
        code: 'already_used',
        message:
          `the signed ${action} was made to go on from run r1 of backfill 'revenue-2024', but a run after it was admitted already (run r2, started 2024-05-01T11:00:00.000Z): ` +
          `a signature starts one run, once; to go on again, sign the ${action} again after the last run (backfill ${action} revenue-2024 --sign-key <your key>)`,
      });
      // An admitted run after a refused one uses it up too.
      expect(checkRunFollowed(signed, [r1, { runId: 'r2', startedAt: 2, refused: true }, { runId: 'r3', startedAt: 3 }], 'mine')).toMatchObject({ code: 'already_used', message: expect.stringContaining('(run r3, ') });
      // The run it names is not listed (another server's, or this run's own id).
      expect(checkRunFollowed(signed, [r0], 'mine')).toMatchObject({ ok: false, code: 'other_run', message: expect.stringContaining('but the server lists no such run of it') });
      expect(checkRunFollowed(signed, [r0, r1], 'r1')).toMatchObject({ ok: false, code: 'other_run' });
    }
  });

  it('refuses one whose earlier runs cannot be listed, with why', () => {
    const start = subject({ action: 'start', afterRun: FIRST_RUN });
    expect(runsUnknownCheck('permission denied', start)).toMatchObject({ ok: false, code: 'runs_unknown', message: expect.stringContaining('(permission denied)') });
    // The refused run holds the id: the start is sent again as a rerun; a resume as a resume.
    expect(runsUnknownCheck('unavailable', start)).toMatchObject({ message: expect.stringContaining('its signed start is used once: nothing ran;') });
    expect(runsUnknownCheck('unavailable', start)).toMatchObject({ message: expect.stringContaining(`(backfill start <spec> --id ${start.backfillId} --rerun --sign-key <your key>)`) });
    expect(runsUnknownCheck('unavailable', subject({ action: 'resume', afterRun: 'r1' }))).toMatchObject({ message: expect.stringContaining('its signed resume is used once') });
  });

  it('earlierRuns: credentials that may not list runs are an answer; a server unavailable for now fails the attempt, to be retried', async () => {
    const env = new MockActivityEnvironment();
    let answer: Error | null = null;
    const activities = createApprovalActivities({
      listRuns: async (workflowId) => {
        if (answer) throw answer;
        return [{ runId: `${workflowId}:r1`, startedAt: 1 }];
      },
    });
    expect(await env.run(activities.earlierRuns, { workflowId: 'backfill/a' })).toEqual({ ok: true, runs: [{ runId: 'backfill/a:r1', startedAt: 1 }] });
    // The caller's own run is left out by the activity: its recorded answer holds for a reset run (another run id) too.
    expect(await env.run(activities.earlierRuns, { workflowId: 'backfill/a', runId: 'backfill/a:r1' })).toEqual({ ok: true, runs: [] });
    answer = Object.assign(new Error('7 PERMISSION_DENIED: not allowed'), { code: 7 });
    expect(await env.run(activities.earlierRuns, { workflowId: 'backfill/a' })).toEqual({ ok: false, reason: 'listing them was refused: 7 PERMISSION_DENIED: not allowed' });
    answer = Object.assign(new Error('14 UNAVAILABLE: no connection'), { code: 14 });
    await expect(env.run(activities.earlierRuns, { workflowId: 'backfill/a' })).rejects.toMatchObject({ type: 'RunsUnknown', nonRetryable: false });
    expect(await env.run(createApprovalActivities().earlierRuns, { workflowId: 'backfill/a' })).toMatchObject({ ok: false });
  });
});
