/**
 * `verifySignature`: checks a signed approval (or signed start) the way git checks an
 * SSH-signed commit: an SSHSIG signature (PROTOCOL.sshsig of OpenSSH, what `ssh-keygen -Y sign`
 * writes) in the namespace `backfill`, by an ssh-ed25519 key listed in the policy's allowed
 * signers, over the exact text it claims to sign; then that the text names this action, this
 * backfill, its namespace, its plan and (a resume, a retry-failed) the carry its run starts from.
 *
 * Native: node:crypto verifies Ed25519, and the envelope is a handful of length-prefixed
 * fields, parsed here. (npm's sshpk reads SSH keys and signatures but not the SSHSIG envelope;
 * the small sshsig packages are unmaintained: none is worth a dependency for this.) Nothing is
 * run in a shell.
 *
 * A refusal is a result, not a failure: the workflow records it and goes on waiting.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { ApplicationFailure, log } from '@temporalio/activity';
import { GRPC, grpcCode } from '../client/connection.ts';
import { parseSignedText, SIGNATURE_NAMESPACE, type EarlierRun, type SignatureRefusal, type SignedAction, type VerifiedSignature } from '../core/approval.ts';
import { signersOfKey, type AllowedSigner } from '../core/signers.ts';
import { nameText } from '../core/value-text.ts';
import { heartbeatingAll } from './heartbeating.ts';

export type VerifyInput = {
  /** The armored signature (-----BEGIN SSH SIGNATURE-----). */
  signature: string;
  /** The text that was signed. */
  text: string;
  /** What it must name: a resume's and a retry-failed's, the hash of the carry the new run starts from too. */
  expected: { action: SignedAction; backfillId: string; namespace: string; planHash: string; carryHash?: string };
  allowedSigners: readonly AllowedSigner[];
  /** The time to judge the signers' valid-after and valid-before by (the workflow's clock). */
  now: number;
};

export type VerifyResult = { ok: true; verified: VerifiedSignature } | { ok: false; code: SignatureRefusal; message: string };

const MAGIC = Buffer.from('SSHSIG');

/** Reads SSH wire-format strings (uint32 length, then bytes) off a buffer. */
class Reader {
  private at = 0;
  constructor(private readonly buffer: Buffer) {}
  bytes(n: number): Buffer {
    if (this.at + n > this.buffer.length) throw new Error('truncated');
    const out = this.buffer.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
  get done(): boolean {
    return this.at === this.buffer.length;
  }
}

function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([length, bytes]);
}

export type SshSignature = {
  publicKey: Buffer;
  keyType: string;
  namespace: string;
  hashAlgorithm: string;
  signatureType: string;
  signature: Buffer;
};

/** Parses an armored SSHSIG signature; throws with what is wrong. */
export function parseSshSignature(armored: string): SshSignature {
  const m = /-----BEGIN SSH SIGNATURE-----([\s\S]*?)-----END SSH SIGNATURE-----/.exec(armored);
  if (!m) throw new Error('is not an SSH signature (-----BEGIN SSH SIGNATURE----- ... -----END SSH SIGNATURE-----)');
  const blob = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const reader = new Reader(blob);
  if (!reader.bytes(6).equals(MAGIC)) throw new Error('does not start with SSHSIG');
  const version = reader.uint32();
  if (version !== 1) throw new Error(`is SSHSIG version ${version}; version 1 is understood`);
  const publicKey = Buffer.from(reader.string());
  const namespace = reader.string().toString();
  reader.string(); // reserved
  const hashAlgorithm = reader.string().toString();
  const sig = new Reader(reader.string());
  if (!reader.done) throw new Error('has bytes after its signature');
  const keyType = new Reader(publicKey).string().toString();
  const signatureType = sig.string().toString();
  const signature = Buffer.from(sig.string());
  return { publicKey, keyType, namespace, hashAlgorithm, signatureType, signature };
}

/** `SHA256:…` of a public key blob, as `ssh-keygen -l` prints it. */
export function fingerprint(publicKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')}`;
}

/** Whether an Ed25519 SSHSIG signature is valid over `message` (PROTOCOL.sshsig: the signed blob wraps the message's hash). */
function ed25519Valid(parsed: SshSignature, message: Buffer): boolean {
  if (parsed.hashAlgorithm !== 'sha512' && parsed.hashAlgorithm !== 'sha256') return false;
  if (parsed.signatureType !== 'ssh-ed25519' || parsed.signature.length !== 64) return false;
  const keyReader = new Reader(parsed.publicKey);
  keyReader.string();
  const raw = keyReader.string();
  if (raw.length !== 32 || !keyReader.done) return false;
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const signed = Buffer.concat([
    MAGIC,
    sshString(parsed.namespace),
    sshString(''),
    sshString(parsed.hashAlgorithm),
    sshString(createHash(parsed.hashAlgorithm).update(message).digest()),
  ]);
  return verify(null, signed, key, parsed.signature);
}

const refuse = (code: SignatureRefusal, message: string): VerifyResult => ({ ok: false, code, message });

/** A signed text is a few short lines; a reason longer than this is not one. */
const MAX_TEXT = 16_384;

/** The whole check, pure but for node:crypto: what the activity runs. */
export function verifySignedText(input: VerifyInput): VerifyResult {
  if (input.text.length > MAX_TEXT || input.signature.length > MAX_TEXT) {
    return refuse('malformed_text', `the signed text or its signature is longer than ${MAX_TEXT} characters: keep the reason short`);
  }
  let parsed: SshSignature;
  try {
    parsed = parseSshSignature(input.signature);
  } catch (error) {
    return refuse('malformed_signature', `the signature ${(error as Error).message}: give the output of ssh-keygen -Y sign -n ${SIGNATURE_NAMESPACE} whole`);
  }
  if (parsed.keyType !== 'ssh-ed25519') {
    return refuse('unsupported_key', `the signature was made with a key of type ${nameText(parsed.keyType)}: approvals are signed with ssh-ed25519 keys (ssh-keygen -t ed25519), listed in the policy's allowed signers`);
  }
  if (parsed.namespace !== SIGNATURE_NAMESPACE) {
    return refuse(
      'wrong_namespace',
      `the signature was made for the namespace ${nameText(parsed.namespace)}, not '${SIGNATURE_NAMESPACE}': sign with ssh-keygen -Y sign -n ${SIGNATURE_NAMESPACE} (backfill approve does), so that a signature made for git or anything else never counts`,
    );
  }
  const key = parsed.publicKey.toString('base64');
  const print = fingerprint(parsed.publicKey);
  const signers = signersOfKey(input.allowedSigners, key);
  if (signers.length === 0) {
    return refuse('unknown_signer', `the signing key ${print} is not among the policy's allowed signers: sign with a listed key, or ask the platform team to add yours`);
  }
  let valid: boolean;
  try {
    valid = ed25519Valid(parsed, Buffer.from(input.text));
  } catch {
    valid = false;
  }
  if (!valid) {
    return refuse('bad_signature', `the signature of ${print} does not match the text it came with: the text (its reason, plan or backfill) was changed after it was signed; sign the text again`);
  }
  const inNamespace = signers.filter((s) => s.namespaces === undefined || s.namespaces.includes(SIGNATURE_NAMESPACE));
  if (inNamespace.length === 0) {
    return refuse('namespace_not_allowed', `the allowed signers let key ${print} sign only for ${signers[0]!.namespaces!.join(', ')}: add ${SIGNATURE_NAMESPACE} to its namespaces="..." option`);
  }
  const current = inNamespace.filter((s) => (s.validAfter === undefined || input.now >= s.validAfter) && (s.validBefore === undefined || input.now < s.validBefore));
  if (current.length === 0) {
    return refuse('key_not_valid', `key ${print} is not valid now by its valid-after/valid-before in the allowed signers (line ${inNamespace[0]!.line}): sign with a current key`);
  }
  const subject = parseSignedText(input.text);
  if ('error' in subject) return refuse('malformed_text', `the signed text ${subject.error}`);
  const { expected } = input;
  if (subject.action !== expected.action) {
    return refuse('other_action', `the signature is for '${subject.action}', not '${expected.action}': sign with backfill ${expected.action === 'approve' ? 'approve' : `${expected.action} --sign-key`}`);
  }
  if (subject.backfillId !== expected.backfillId) {
    return refuse('other_backfill', `the signature is for the backfill '${subject.backfillId}', not '${expected.backfillId}': sign this backfill's own text`);
  }
  if (subject.namespace !== expected.namespace) {
    return refuse('other_namespace', `the signature is for the Temporal namespace '${subject.namespace}', not '${expected.namespace}': sign for the namespace the backfill runs in`);
  }
  if (subject.planHash !== expected.planHash) {
    return refuse(
      'other_plan',
      `the signature approves the plan ${subject.planHash}, but this backfill runs ${expected.planHash}: the spec, range or skipped partitions differ from what was approved; review this plan and sign it`,
    );
  }
  if ((subject.carryHash ?? null) !== (expected.carryHash ?? null)) {
    return refuse(
      'other_carry',
      `the signature goes on from the end ${subject.carryHash ?? '(none)'}, but this run starts from ${expected.carryHash ?? '(none)'}: it was signed for another end of this backfill (or another node's failures); sign this ${expected.action} again`,
    );
  }
  return { ok: true, verified: { subject, principals: current[0]!.principals, fingerprint: print } };
}

/** The runs of a workflow id the server lists, or why they cannot be known (an error that will not pass). */
export type EarlierRuns = { ok: true; runs: EarlierRun[] } | { ok: false; reason: string };

export function createApprovalActivities(deps: {
  /** Every run of a workflow id (client/workflow-runs.ts `runsOfWorkflowId`, through the worker's connection). */
  listRuns?: (workflowId: string) => Promise<EarlierRun[]>;
} = {}) {
  return heartbeatingAll({
    async verifySignature(input: VerifyInput): Promise<VerifyResult> {
      return verifySignedText(input);
    },
    /**
     * The runs of `workflowId` but the caller's own (`runId`), for a signed start to be admitted
     * once (core/approval.ts `checkRunFollowed`): left out here, so that the answer a run records
     * still holds when it is replayed under another run id (`temporal workflow reset` gives the
     * reset run a new one). Credentials that may not list them are an answer (the start is refused
     * with it); a server that fails for now fails the attempt, retried.
     */
    async earlierRuns(input: { workflowId: string; runId?: string }): Promise<EarlierRuns> {
      if (deps.listRuns === undefined) return { ok: false, reason: 'this worker was created without a connection to list them' };
      try {
        return { ok: true, runs: (await deps.listRuns(input.workflowId)).filter((r) => r.runId !== input.runId) };
      } catch (error) {
        const code = grpcCode(error);
        const reason = error instanceof Error ? error.message : String(error);
        if (code === GRPC.PERMISSION_DENIED || code === GRPC.UNAUTHENTICATED || code === GRPC.UNIMPLEMENTED || code === GRPC.INVALID_ARGUMENT) {
          log.warn(`could not list the runs of ${input.workflowId} (${reason}): its signed start is refused`);
          return { ok: false, reason: `listing them was refused: ${reason}` };
        }
        throw ApplicationFailure.retryable(`could not list the runs of ${input.workflowId}: ${reason}`, 'RunsUnknown');
      }
    },
  });
}

export type ApprovalActivities = ReturnType<typeof createApprovalActivities>;
