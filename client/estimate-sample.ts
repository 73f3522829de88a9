/**
 * `plan --estimate --sample N`: times N partitions per node on the workers, without publishing
 * anything. The sample is a staged backfill (`start --stage`) of the plan in which every other
 * partition counts as done; once its partitions are staged it is discarded, and the estimate
 * reads the durations of the discarded versions from the ledger. Nothing a reader sees changes:
 * staged versions are never in the views, and discarding drops their rows.
 */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { BackfillError } from '../core/errors.ts';
import type { Plan } from '../core/plan.ts';
import { parseSample, sampleSelection, type SampleSelection } from '../core/sample.ts';
import type { PartitionRange, ResolvedSpec } from '../core/spec.ts';
import { defaultBackfillId, type BackfillClient } from './backfill-client.ts';
import { sampleBusy } from './dataset-writers.ts';
import { terminalText } from './printable.ts';

export type SampleRun = {
  backfillId: string;
  perNode: number;
  /** The sampled partitions' keys by node. */
  partitions: Record<string, string[]>;
  /** From the start to every sampled partition staged, as the client saw it. */
  wallMs: number;
  /** Sampled partitions that failed (they have no duration). */
  failed: number;
  /** Staged versions the discard dropped. */
  discarded: number;
};

export type SampleOptions = {
  range?: PartitionRange;
  /** Give up (cancel the sample) when its partitions have not all settled after this long. Default 30 minutes. */
  timeoutMs?: number;
  /** How often to look at the sample's progress. Default 500 ms. */
  pollMs?: number;
  id?: string;
  /** Told what the sample does, as it does it (the command line writes it to stderr). */
  log?: (line: string) => void;
};

const REASON = 'plan --estimate --sample: timing partitions, staged and discarded';

/** Runs the sample as a staged backfill, waits until its partitions are staged, discards them, and says what it ran. */
export async function runSample(client: BackfillClient, spec: ResolvedSpec, selection: SampleSelection, options: SampleOptions = {}): Promise<SampleRun> {
  const log = options.log ?? (() => undefined);
  const backfillId = options.id ?? `sample-${defaultBackfillId(spec.name)}`;
  const began = Date.now();
  const started = await client.start(spec, { id: backfillId, ...(options.range ? { range: options.range } : {}), skip: selection.skip, stage: true, reason: REASON }).catch(async (error: unknown) => {
    // The start's refusal advises a --wait-for-datasets that plan has not: said for a sample.
    if (error instanceof BackfillError && error.code === 'dataset_busy') {
      const writers = await client.datasetWriters(backfillId, spec.nodes.map((n) => n.id)).catch(() => []);
      if (writers.length > 0) throw sampleBusy(writers);
    }
    throw error;
  });
  log(`sampling ${selection.perNode} partition${selection.perNode === 1 ? '' : 's'} per node as staged backfill ${backfillId} (nothing is published; it is discarded after)`);
  let staged = false;
  try {
    if (started.admission && started.admission.state !== 'running') {
      throw new BackfillError(
        'policy_violation',
        `the sample's staged backfill ${backfillId} is held by the policy (${started.admission.state.replaceAll('_', ' ')}): it was cancelled; estimate from history, or --assume a duration`,
      );
    }
    const deadline = began + (options.timeoutMs ?? 30 * 60_000);
    for (;;) {
      const progress = await client.progress(backfillId);
      if (progress.state === 'staged') {
        staged = true;
        const wallMs = Date.now() - began;
        const reply = await client.decideStaged(backfillId, 'discard', REASON);
        const outcome = await client.wait(backfillId, Math.max(60_000, deadline - Date.now()));
        if (outcome.state !== 'discarded') throw new BackfillError('failed', `the sample's staged backfill ${backfillId} ended ${outcome.state} after its discard`);
        log(`sampled in ${(wallMs / 1000).toFixed(1)} s; ${reply.versions} staged version${reply.versions === 1 ? '' : 's'} discarded`);
        return { backfillId, perNode: selection.perNode, partitions: selection.partitions, wallMs, failed: progress.failed, discarded: reply.versions };
      }
      if (progress.state !== 'running') {
        throw new BackfillError('failed', `the sample's staged backfill ${backfillId} ended ${progress.state} before its partitions were staged: see backfill status ${backfillId}`);
      }
      if (Date.now() > deadline) {
        throw new BackfillError('timeout', `the sample's staged backfill ${backfillId} did not stage its partitions within ${Math.round((options.timeoutMs ?? 1_800_000) / 1000)} s: it was cancelled (is a worker polling its task queues?)`);
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
    }
  } catch (error) {
    // Not staged yet (held, failed, too slow): stop it, and drop what it staged.
    if (!staged) await cancelAndDiscard(client, backfillId, log);
    throw error;
  }
}

/** `plan --estimate --sample <n>`: checks n against the plan before anything starts, then runs the sample against the command's server. */
export async function sampleFromCommand(command: CommandUnknownOpts, spec: ResolvedSpec, plan: Plan, range: PartitionRange, value: unknown): Promise<SampleRun> {
  const selection = sampleSelection(plan, parseSample(value, plan));
  const { withClient } = await import('./with-client.ts');
  const log = (line: string) => process.stderr.write(`${terminalText(line)}\n`);
  return withClient(command, async (client) => {
    const id = `sample-${defaultBackfillId(spec.name)}`;
    // Interrupted: the sample must not stay behind, staging partitions nobody will discard.
    const interrupted = () => {
      log(`interrupted: cancelling the sample ${id} and dropping what it staged (interrupt again to leave it as it is)`);
      void cancelAndDiscard(client, id, log).finally(() => process.exit(130));
    };
    process.once('SIGINT', interrupted);
    try {
      return await runSample(client, spec, selection, { range, id, log });
    } finally {
      process.off('SIGINT', interrupted);
    }
  });
}

/** Stops a sample that did not finish, and drops the versions it staged: no staged row of it stays in the warehouse. */
async function cancelAndDiscard(client: BackfillClient, backfillId: string, log: (line: string) => void): Promise<void> {
  try {
    // Ended already (it failed): there is nothing to cancel, and its staged versions go all the same.
    await client.cancel(backfillId, { reason: REASON }).catch((error: unknown) => {
      if (!(error instanceof BackfillError && error.code === 'not_running')) throw error;
    });
    await client.wait(backfillId, 120_000).catch(() => undefined);
    const reply = await client.decideStaged(backfillId, 'discard', REASON);
    log(`the sample's ${reply.versions} staged version${reply.versions === 1 ? '' : 's'} discarded`);
  } catch (error) {
    log(`the sample ${backfillId} may have left staged versions (no reader sees them): ${error instanceof Error ? error.message : String(error)}; drop them with backfill discard ${backfillId}`);
  }
}
