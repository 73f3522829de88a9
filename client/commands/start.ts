/** `backfill start <spec>`: starts a backfill; prints its id and Web UI link. */
import { Command } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { BackfillError } from '../../core/errors.ts';
import type { BackfillClient, Started } from '../backfill-client.ts';
import type { DatasetWriter } from '../dataset-writers.ts';
import type { Progress } from '../../core/protocol.ts';
import { parseDurationFlag } from '../duration-flag.ts';
import { exitCodeFor } from '../exit-codes.ts';
import { SPEC_IN_EXAMPLES as SPEC, HELP_GROUPS, documented } from '../help.ts';
import type { ChangeSummary } from '../only-changed.ts';
import { budgetsAsked, checkOnlyChanged, codeVersionOption, concurrencyOption, costBudgetOption, fairnessWeightOption, jsonOption, positiveInteger, print, priorityOption, rateOption, reasonOption, retryBudgetOption, warehouseOption, watchIntervalOption } from '../options.ts';
import { withClient } from '../with-client.ts';
import { terminalText } from '../printable.ts';
import { shellWord } from '../../core/shell-word.ts';
import { unpolledQueueNotes, workerCommand } from '../worker-hint.ts';

/** `--wait-for-datasets [timeout]`: true (as long as it takes) or a duration. */
function waitTimeout(value: string | true): { timeoutMs?: number } {
  if (value === true) return {};
  return { timeoutMs: parseDurationFlag('--wait-for-datasets', value, {}, 'or give no value to wait as long as it takes') };
}

/** Tells on stderr which datasets a start waits for, and how far their writers are. */
function reportWaiting(client: BackfillClient): (writers: DatasetWriter[]) => Promise<void> {
  return async (writers) => {
    const { holdsOf } = await import('../wait-notes.ts');
    const lines = await Promise.all(
      writers.map(async (w) => {
        // What holds the writer (a decision it waits for: a publish, a canary's approval; a pause) is what frees the datasets.
        const said = (p: Progress) => {
          const holds = holdsOf(w.backfillId, p).map((h) => h.reason);
          return `${p.done}/${p.total} done${holds.length > 0 ? `; ${holds.join('; ')}` : p.paused ? ', paused' : ''}`;
        };
        const progress = await client.progress(w.backfillId).then(said, () => 'progress unknown');
        return `  ${w.datasets.join(', ')}: written by ${w.backfillId} (${progress})`;
      }),
    );
    process.stderr.write(`waiting for datasets to be free:\n${terminalText(lines.join('\n'))}\n`);
  };
}

/**
 * What `start` reports: the admission's policy only when a policy judged the start (without one,
 * the workflow answers a policy with neither hash nor path).
 */
export function reportedStart<S extends Started>(started: S): S {
  const admission = started.admission;
  if (!admission?.policy || admission.policy.hash !== null || admission.policy.path !== null) return started;
  return { ...started, admission: { ...admission, policy: null } };
}

/**
 * What the policy decided, as `start` says it: the policy's hash, and what the backfill waits for.
 * With no decision (no worker took the start), that nothing runs until a worker does, and
 * `worker`, the command line of one that runs the spec.
 */
export function admissionLines(started: Started & { attached?: boolean }, worker = 'backfill worker'): string {
  const admission = reportedStart(started).admission;
  if (admission === undefined || started.attached) return '';
  if (admission === null) {
    return `\n  ${pc.yellow(`no worker has taken it yet: nothing runs until one polls its workflow task queue; start one with '${worker}'`)}`;
  }
  const lines = admission.policy ? [`\n  policy: ${admission.policy.path ?? ''} (${(admission.policy.hash ?? '').slice(0, 19)}…)`] : [];
  for (const hold of admission.holds) lines.push(`\n  ${pc.yellow(hold.kind === 'approval' ? 'awaiting approval' : hold.kind === 'window' ? 'waiting for its run window' : 'held')}: ${hold.reason}`);
  if (admission.state === 'awaiting_approval') lines.push(`\n  approve: backfill approve ${started.backfillId} --reason "..." --sign-key <key> (another of the policy's allowed signers)`);
  return lines.join('');
}

export function startCommand() {
  return documented(new Command('start'), HELP_GROUPS.run, [
    [`backfill start ${SPEC} --id shop-2024 --rate 50 --watch`, 'at most 50 partitions a second in all; bars until it ends (exit code as for wait)'],
    [`backfill start ${SPEC} --id shop-march --from 2024-03-01 --to 2024-04-01`, 'March only (periods that overlap it: its weeks and the month too)'],
    [`backfill start ${SPEC} --id shop-2024 --rerun --only-changed`, 'the same id again, running only what changed since it was published'],
    [`backfill start ${SPEC} --id shop-2024 --stage`, 'staged: nothing is published until backfill publish shop-2024 (backfill diff shop-2024 shows what would change)'],
    [`backfill start ${SPEC} --id shop-2024 --canary 3`, 'the 3 newest partitions of each dataset (and what they need) first, staged; it waits for backfill approve shop-2024 --reason ... or backfill discard shop-2024'],
    [`backfill start ${SPEC} --id nightly --wait-for-datasets 600`, 'when another backfill writes these datasets, wait up to 600 s for it instead of failing'],
    [`backfill start ${SPEC} --id restate-2024 --reason finance-restated-2024-FIN-1234 --sign-key ~/.ssh/id_ed25519`, 'a signed start with its reason: the signer cannot approve it too'],
    [`backfill start ${SPEC} --id urgent-fix --priority 1 --fairness-weight 3`, 'ahead of priority 2-5 backfills on shared task queues, and 3 times the share of a weight-1 one'],
  ])
    .description('start a backfill; prints its id and Web UI link')
    .argument('<spec>', 'spec file (.yaml, .json or .ts)')
    .option('--id <id>', 'backfill id (default: the spec name and the time)')
    .option('--from <date>', 'first partition time (inclusive, UTC)')
    .option('--to <date>', 'end of the range (exclusive, UTC)')
    .addOption(rateOption('backfill-wide rate limit, partitions per second'))
    .addOption(concurrencyOption('backfill-wide limit on activities running at once (a partition or a batch each)'))
    .option('--rerun', 'run an id again whose earlier backfill has finished')
    .option('--attach', 'when a backfill with this id is already running, attach to it instead of failing')
    .option('--only-changed', 'run only the partitions whose spec, code or upstream versions changed since their published version, or that were never published')
    .addOption(warehouseOption())
    .addOption(codeVersionOption())
    .option('--wait-for-datasets [timeout]', 'when running backfills write some of its datasets, wait until they are free (as long as it takes, or up to a duration such as 2h, or 600 for seconds) instead of failing; give it after the spec')
    .option('--stage', 'write and check every partition as a staged version that nobody reads; compare with backfill diff, then backfill publish (all at once) or backfill discard')
    .option('--canary <n>', "first run n partitions per dataset (the spec's canary.pick, else the newest) and what they need, staged, then wait for backfill approve or discard (over the spec's canary.partitions)", positiveInteger('--canary'))
    .addOption(reasonOption("why, kept in the backfill's audit trail (the policy may require one)"))
    .option('--sign-key <file>', 'sign the start with this ssh-ed25519 key (or its .pub when the key is in ssh-agent), as the policy may require')
    .addOption(priorityOption("task-queue priority: 1 is the most urgent, 5 the least (default: the server's, 3)"))
    .addOption(fairnessWeightOption('its share of a task queue shared with other backfills, against theirs (default 1)'))
    .addOption(retryBudgetOption("pause once this many partition attempts have failed (within the policy's most)"))
    .addOption(costBudgetOption("pause once the partitions cost this much, in the policy's cost metric (within its most)"))
    .option('--watch', 'show live progress until it ends (not on a terminal: a full status block on stdout every --interval)')
    .addOption(watchIntervalOption())
    .addOption(jsonOption())
    .action(async (file, options, command) => {
      const limits = (await import('../../core/limits.ts')).limitsAsked(options);
      checkOnlyChanged(command, options.onlyChanged);
      const [{ loadSpecFile }, { expandPlan, rangeBeyondSpec, requirePartitionsInRange }, { parseRange }] = await Promise.all([import('../spec-file.ts'), import('../../core/plan.ts'), import('../../core/spec.ts')]);
      const { spec, transformModules } = await loadSpecFile(file);
      const range = parseRange(options.from, options.to);
      const wait = options.waitForDatasets === undefined ? undefined : waitTimeout(options.waitForDatasets);
      // Refused before connecting (the client checks them again for library callers).
      requirePartitionsInRange(spec, range);
      // What plan would note (a range beyond the spec, a table read whose name is a node's with a typo, a column left unnamed, a partial period): on stderr, so that --json stays one document.
      const notes = [rangeBeyondSpec(spec, range) ?? [], ...(await import('../../core/spec-notes.ts')).startNotes(spec.nodes, range)].flat();
      for (const note of notes) process.stderr.write(`${pc.yellow(`note: ${terminalText(note)}`)}\n`);
      (await import('../../core/canary.ts')).startCanary(spec, options.canary, options.stage === true);
      const changes = options.onlyChanged ? await (await import('../only-changed.ts')).onlyChanged(expandPlan(spec, range), options) : undefined;
      await withClient(command, async (client) => {
        let started: Started & { attached?: boolean; onlyChanged?: ChangeSummary };
        try {
          started = await client.start(spec, {
            range,
            ...(options.id !== undefined ? { id: options.id } : {}),
            ...(options.rerun ? { rerun: true } : {}),
            limits,
            ...(changes ? { skip: changes.skip } : {}),
            ...(options.stage ? { stage: true } : {}),
            ...(options.canary !== undefined ? { canary: options.canary } : {}),
            ...(wait ? { waitForDatasets: { ...wait, onWait: reportWaiting(client) } } : {}),
            ...(options.reason !== undefined ? { reason: options.reason } : {}),
            onAdmissionWait: (why, id) => {
              process.stderr.write(
                `${pc.yellow(`note: waiting for the policy's decision on this start (up to 60s): ${terminalText(why ?? 'the workers of its workflow task queue judge it, and none has answered yet')}; 'backfill status ${shellWord(id)}' says what it waits for`)}\n`,
              );
            },
            ...(options.signKey !== undefined ? { signKey: options.signKey } : {}),
            ...(options.priority !== undefined ? { priority: options.priority } : {}),
            ...(options.fairnessWeight !== undefined ? { fairnessWeight: options.fairnessWeight } : {}),
            ...budgetsAsked(options),
          });
          if (changes) started = { ...started, onlyChanged: changes.summary };
          started = reportedStart(started);
        } catch (error) {
          const running = options.attach && options.id !== undefined && error instanceof BackfillError && error.code === 'already_exists'
            ? await client.describe(options.id).then((d) => (d.status.name === 'RUNNING' ? d : undefined))
            : undefined;
          if (!running) throw error;
          started = { backfillId: options.id!, workflowId: running.workflowId, runId: running.runId, uiUrl: client.uiUrl(running.workflowId, running.runId), attached: true };
        }
        // No link where the command line knows no Web UI for the server: `uiUrl` null, and the text says how to set one.
        const { knownLink, webUiText } = await import('../web-ui.ts');
        const shown = { ...started, uiUrl: knownLink(client, started.uiUrl) };
        const verb = started.attached ? 'attached to' : 'started';
        const kept = started.onlyChanged ? `\n  only changed: ${started.onlyChanged.totalToRun} partitions run, ${started.onlyChanged.totalSkipped} keep their published versions` : '';
        print(options.json, shown, () => `${verb} ${pc.bold(started.backfillId)}${kept}${admissionLines(started, workerCommand(spec, transformModules))}\n  web UI: ${webUiText(shown.uiUrl)}${options.watch ? '\n' : `\n  watch:  backfill status ${started.backfillId} --watch`}`);
        // A worker took the start: nodes on an activity queue nobody polls would wait unseen until status is asked.
        if (!started.attached && started.admission !== null) {
          const unpolled = await client.unpolledQueues(spec.nodes.map((n) => n.taskQueue));
          for (const note of unpolledQueueNotes(spec, unpolled, workerCommand(spec, transformModules))) process.stderr.write(`${pc.yellow(`note: ${terminalText(note)}`)}\n`);
        }
        if (options.watch) {
          const [{ watchOnStdout }, { renderEnd }] = await Promise.all([import('../watch.ts'), import('../render.ts')]);
          // On a pipe, the last status block already says how it ended.
          const { final, shown } = await watchOnStdout(client, started.backfillId, { json: options.json, intervalMs: options.interval });
          if (!options.json && !shown) process.stdout.write(`${terminalText(renderEnd(final))}\n`);
          process.exitCode = exitCodeFor(final.state, final);
        }
      });
    });
}
