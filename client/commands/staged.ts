/** A staged backfill (`start --stage`): `diff` compares its staged versions with the published ones, `publish` publishes them all at once, `discard` drops them. */
import { Command, Option } from '@commander-js/extra-typings';
import pc from 'picocolors';
import type { PartitionDiff } from '../../core/diff.ts';
import { HELP_GROUPS, documented } from '../help.ts';
import { jsonOption, print, warehouseOption } from '../options.ts';
import { withClient } from '../with-client.ts';

export function diffCommand() {
  return documented(new Command('diff'), HELP_GROUPS.audit, [
    ['backfill diff shop-2024', 'per dataset: rows added, removed and changed by the staged versions, and the change of each numeric column'],
    ['backfill diff shop-2024 --json', 'the same per dataset, as JSON'],
    ['backfill diff shop-2024 --partitions', 'and each partition whose rows changed (with --json: every staged partition)'],
  ])
    .description("compare a staged backfill (or a canary's slice) with what is published: rows added, removed and changed, numeric columns")
    .argument('<id>', 'backfill id (started with --stage or --canary)')
    .addOption(warehouseOption())
    .option('--partitions', 'also each partition: its rows before and after, added, removed and changed')
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const [{ openExistingWarehouse }, { diffSummary }, { renderDiff, unstagedNote }] = await Promise.all([
        import('../existing-warehouse.ts'),
        import('../../activities/warehouse/staging.ts'),
        import('../render-diff.ts'),
      ]);
      // Refused before connecting when no warehouse is there (opening one would create it empty).
      const warehouse = await openExistingWarehouse(options.warehouse, 'diff');
      try {
        await withClient(command, async (client) => {
          const run = await client.stagedRun(id);
          // What a publish would leave out: the partitions that failed, and those they blocked.
          const undecided = run.phase !== 'published' && run.phase !== 'discarded';
          const progress = undecided ? await client.progress(id).catch(() => null) : null;
          const notStaged = progress && progress.failed + progress.blocked > 0 ? { failed: progress.failed, blocked: progress.blocked } : null;
          const partitions: PartitionDiff[] = [];
          const keep = options.partitions ? (page: readonly PartitionDiff[]) => partitions.push(...page) : undefined;
          const summary = await diffSummary((page) => warehouse.diffStaged({ backfillId: run.backfillId, runKey: run.runKey }, page), run.keys, undefined, keep);
          const ended = run.end ? { ended: run.end } : {};
          const decided = run.decided ? { decided: run.decided } : {};
          print(options.json, { backfillId: id, phase: run.phase, ...ended, ...decided, ...summary, ...(notStaged ? { notStaged } : {}), ...(options.partitions ? { partitionDiffs: partitions } : {}) }, () =>
            renderDiff(id, run.phase, summary, options.partitions ? partitions : undefined, run.end, unstagedNote(id, notStaged), run.decided),
          );
        });
      } finally {
        await warehouse.close();
      }
    });
}

/** How long a publish or discard runs before the command says it is still under way. */
const STILL_DECIDING_MS = 15_000;

function decisionCommand(action: 'publish' | 'discard') {
  const publish = action === 'publish';
  return documented(new Command(action), HELP_GROUPS.control, [
    publish
      ? ['backfill publish shop-2024 --reason reviewed', 'every staged version is published in one transaction: readers see all of it or none']
      : ['backfill discard shop-2024 --reason wrong-factor', 'the staged versions (of a staged backfill, or of a canary that waits) are dropped; what is published stays, and a canary backfill ends'],
  ])
    .description(publish ? 'publish every staged version of a staged backfill at once' : 'drop every staged version of a staged backfill, or of a canary that waits (the backfill then ends); nothing is published')
    .argument('<id>', publish ? 'backfill id (started with --stage, now staged)' : 'backfill id (staged, or a canary that waits)')
    .option('--reason <text>', 'why, kept with the decision in the backfill\'s state')
    .addOption(new Option('--partial', 'publish though partitions failed or are blocked (they keep their older versions, which then disagree with what they read)').hideHelp(!publish))
    .addOption(jsonOption())
    .action(async (id, options, command) => {
      const [{ partialPublishRefusal, unstagedNote }, { terminalText }, { BackfillError }] = await Promise.all([import('../render-diff.ts'), import('../printable.ts'), import('../../core/errors.ts')]);
      const say = (line: string) => process.stderr.write(`${pc.yellow(`note: ${terminalText(line)}`)}\n`);
      // One builder makes both commands: the option is publish's alone.
      if (!publish && options.partial) throw new BackfillError('invalid_argument', "'backfill discard' has no option '--partial' (publish's): a discard drops every staged version");
      await withClient(command, async (client) => {
        if (publish) {
          const progress = await client.progress(id).catch(() => null);
          // Only a staged one: any other state is refused by the workflow, with its own reason.
          const refusal = progress?.state === 'staged' && !options.partial ? partialPublishRefusal(id, progress.nodes) : null;
          if (refusal !== null) throw new BackfillError('invalid_argument', `nothing was published: ${refusal}`);
          const note = unstagedNote(id, progress && { failed: progress.failed, blocked: progress.blocked });
          if (note !== null) say(note);
        }
        // The warehouse does it in one transaction, on a worker: a lost one is seen only at its activity's timeout.
        const slow = setTimeout(
          () => say(`the ${action} is still under way, every version at once; if the worker running it was lost, it runs again after the activity's 10-minute timeout ('backfill status ${id}' shows it)`),
          STILL_DECIDING_MS,
        );
        slow.unref();
        const reply = await client.decideStaged(id, action, options.reason).finally(() => clearTimeout(slow));
        print(options.json, { backfillId: id, ...reply }, () => {
          const done = publish ? 'published' : 'discarded';
          const again = reply.versions === 0 && reply.before > 0 ? ` (${reply.before} were ${done} already)` : '';
          const nodes = reply.nodes.map((n) => `  ${n.node}: ${n.versions}`).join('\n');
          return `${pc.bold(id)}: ${reply.versions} staged version${reply.versions === 1 ? '' : 's'} ${done}${again}, by ${reply.by}${nodes ? `\n${nodes}` : ''}`;
        });
      });
    });
}

export const publishCommand = () => decisionCommand('publish');
export const discardCommand = () => decisionCommand('discard');
