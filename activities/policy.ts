/**
 * `loadPolicy`: the policy file the worker was given (`backfill worker --policy <file>`, or
 * $BACKFILL_POLICY), read afresh for each backfill that starts, with its hash; the workflow
 * records both, so its history says which policy judged it. No policy configured is an
 * explicit answer, never a silent default.
 *
 * Every worker that polls the workflow task queue must be given the same file: a backfill
 * is judged by whichever worker runs its activity.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { parseDocument } from 'yaml';
import { BackfillError } from '../core/errors.ts';
import { GRPC, grpcCode } from '../client/connection.ts';
import { parsePolicy, policyHash, type Policy } from '../core/policy.ts';
import { ANY_POLICY, POLICY_MISMATCH, policyPinProblem } from '../core/policy-pin.ts';
import { heartbeatingAll } from './heartbeating.ts';

/** The variable a worker reads its policy file from when --policy is not given. */
export const POLICY_ENV = 'BACKFILL_POLICY';

/** The conventional name of the file. */
export const POLICY_FILE = 'backfill.policy.yaml';

export type LoadedPolicy =
  /** `othersHaveOne`: other workflow workers of the queue have a policy (core/policy-pin.ts `ANY_POLICY`). */
  | { kind: 'none'; othersHaveOne?: true }
  | {
      kind: 'policy';
      /** The absolute path the worker read. */
      path: string;
      /** policyHash of the file's text and of its allowed-signers file. */
      hash: string;
      policy: Policy;
    };

/** The policy file a worker is given (`--policy`, which commander fills from $BACKFILL_POLICY), else none. */
export function policyFileFrom(flag: string | undefined): string | undefined {
  const given = flag;
  return given === undefined || given.trim() === '' ? undefined : resolve(given);
}

async function readText(path: string, what: string, field: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'it does not exist' : (code ?? (error as Error).message);
    throw new BackfillError('invalid_policy', `cannot read ${what} ${path}: ${why}; fix the path (${field})`, field);
  }
}

/** Reads and validates a policy file (and the allowed-signers file it names, relative to it). Throws a BackfillError naming the field and the fix. */
export async function readPolicyFile(file: string): Promise<Extract<LoadedPolicy, { kind: 'policy' }>> {
  const path = resolve(file);
  const text = await readText(path, 'the policy file', `--policy or $${POLICY_ENV}`);
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) throw new BackfillError('invalid_policy', `${path} is not valid YAML: ${document.errors[0]!.message}`);
  const data: unknown = document.toJS();
  const signersFile = (data as { approval?: { allowedSignersFile?: unknown } } | null)?.approval?.allowedSignersFile;
  const signersPath = typeof signersFile === 'string' && signersFile !== '' ? resolve(dirname(path), signersFile) : undefined;
  const allowedSignersText = signersPath ? await readText(signersPath, 'the allowed signers file', 'approval.allowedSignersFile') : undefined;
  const policy = parsePolicy(data, { path, ...(allowedSignersText !== undefined ? { allowedSignersText } : {}) });
  return { kind: 'policy', path, hash: policyHash(text, allowedSignersText), policy };
}

/** A later judgement of a backfill admitted under the policy `hash`: a worker without a policy declines it (core/policy-pin.ts). */
export type PolicyPin = { backfillId: string; queue: string; hash: string };
/**
 * A first judgement asked on the policy queue (patch governance-activities-regular): the workflow
 * task queue it is for, which the activity's own queue no longer is. A local activity's is.
 */
export type FirstJudgement = { workflowQueue: string };


export function createPolicyActivities(deps: {
  policyFile: string | undefined;
  /** Whether a workflow worker with a policy polled this workflow queue's policy queue lately (asked of a worker without one). */
  policyHolders?: (workflowQueue: string) => Promise<boolean>;
}) {
  /**
   * A worker without a policy, asked for a first judgement: whether workers of workflow queue
   * `queue` with a policy polled lately, so that it passes the judgement on to them. A server that
   * refuses the question (no permission, an older server) gets the answer every worker without a
   * policy gave before: no, it judges by none. One that fails for now fails the attempt, retried.
   */
  const othersHaveOne = async (queue: string): Promise<boolean> => {
    if (deps.policyHolders === undefined) return false;
    try {
      return await deps.policyHolders(queue);
    } catch (error) {
      const code = grpcCode(error);
      const reason = error instanceof Error ? error.message : String(error);
      if (code === GRPC.PERMISSION_DENIED || code === GRPC.UNIMPLEMENTED) {
        log.warn(`could not list the pollers of workflow queue '${queue}''s policy queue (${reason}): judging without a policy`);
        return false;
      }
      throw ApplicationFailure.retryable(`could not tell whether workers of workflow queue '${queue}' with a policy are running (listing the pollers of its policy queue failed: ${reason})`, 'PolicyHoldersUnknown');
    }
  };
  return heartbeatingAll({
    async loadPolicy(request?: PolicyPin | FirstJudgement): Promise<LoadedPolicy> {
      const pin = request !== undefined && 'hash' in request ? request : undefined;
      let loaded: LoadedPolicy = { kind: 'none' };
      if (deps.policyFile !== undefined) {
        try {
          loaded = await readPolicyFile(deps.policyFile);
        } catch (error) {
          // A policy the worker cannot read stops the start: running unjudged would bypass it.
          if (error instanceof BackfillError) throw ApplicationFailure.nonRetryable(error.message, 'InvalidPolicy');
          throw error;
        }
      }
      if (pin !== undefined) {
        // Passed on by a worker without a policy, but none with one polls any more (stopped, or the policy taken away): judged by none, as before.
        if (pin.hash === ANY_POLICY && loaded.kind === 'none' && !(await othersHaveOne(pin.queue))) return loaded;
        const problem = policyPinProblem({ backfillId: pin.backfillId, queue: pin.queue, pinned: pin.hash, own: loaded.kind === 'policy' ? loaded.hash : null });
        if (problem !== null) throw ApplicationFailure.retryable(problem, POLICY_MISMATCH);
      } else if (loaded.kind === 'none' && deps.policyHolders !== undefined && (await othersHaveOne(request !== undefined && 'workflowQueue' in request ? request.workflowQueue : Context.current().info.taskQueue))) {
        return { kind: 'none', othersHaveOne: true };
      }
      return loaded;
    },
  });
}

export type PolicyActivities = ReturnType<typeof createPolicyActivities>;
