/**
 * The command line's help beyond what commander writes from the options: the group each
 * command is listed under in `backfill --help`, examples at the end of every command's help,
 * and the top-level help's examples, connection settings and exit codes.
 *
 * `BackfillCommand.createCommand` attaches a command's group and examples when the command is
 * created, so every command defined in cli.ts gets them without another line there; a command
 * missing from COMMAND_HELP fails test/unit/help.test.ts.
 */
import { Command } from 'commander';
import { exitCodeLines } from './exit-codes.ts';

/** One example: a command line (no shell syntax: the help test parses it) and what it does. */
export type Example = readonly [command: string, does: string];

export type CommandHelp = { group: string; examples: readonly Example[] };

/** Groups of the top-level help, in the order they are listed. */
export const HELP_GROUPS = {
  run: 'Plan and run:',
  control: 'Control a backfill:',
  audit: 'Audit and undo:',
  infra: 'Workers, servers and setup:',
} as const;

const SPEC = 'examples/shop/backfill.yaml';

export const COMMAND_HELP: Readonly<Record<string, CommandHelp>> = {
  plan: {
    group: HELP_GROUPS.run,
    examples: [
      [`backfill plan ${SPEC}`, 'every node, its partitions and dependencies, the critical path and the width'],
      [`backfill plan ${SPEC} --from 2024-03-01 --to 2024-04-01 --json`, 'March only, as JSON'],
      [`backfill plan ${SPEC} --only-changed --warehouse postgres://backfill@db.internal:5432/warehouse`, 'also count what would run again against that warehouse'],
      [`backfill plan ${SPEC} --estimate --concurrency 20`, 'how long it will take, from the ledger of earlier runs (writes nothing)'],
      [`backfill plan ${SPEC} --explain --from 2024-03-03 --to 2024-03-10`, 'why each node and partition is in, and what it reads outside the range'],
      [`backfill plan ${SPEC} --format svg`, 'a picture of the graph, as SVG on stdout (also dot or mermaid)'],
    ],
  },
  start: {
    group: HELP_GROUPS.run,
    examples: [
      [`backfill start ${SPEC} --id shop-2024 --rate 50 --watch`, 'at most 50 partitions a second in all; bars until it ends (exit code as for wait)'],
      [`backfill start ${SPEC} --id shop-march --from 2024-03-01 --to 2024-04-01`, 'March only (periods that overlap it: its weeks and the month too)'],
      [`backfill start ${SPEC} --id shop-2024 --rerun --only-changed`, 'the same id again, running only what changed since it was published'],
      [`backfill start ${SPEC} --id nightly --wait-for-datasets 600`, 'when another backfill writes these datasets, wait up to 600 s for it instead of failing'],
    ],
  },
  status: {
    group: HELP_GROUPS.run,
    examples: [
      ['backfill status shop-2024', 'one line per node: done, running, failed, blocked, pending, rate, throughput, ETA'],
      ['backfill status shop-2024 --watch --interval 5s', 'live bars, refreshed every 5 seconds, until it ends'],
      ['backfill status shop-2024 --json', 'the same as JSON, with `waiting` (nodes whose task queue no worker polls)'],
    ],
  },
  wait: {
    group: HELP_GROUPS.run,
    examples: [
      ['backfill wait shop-2024', 'blocks until it ends: exit 0 completed, 2 with failed partitions, 3 cancelled or failed'],
      ['backfill wait shop-2024 --timeout 2h', 'gives up (exit 1) after two hours; the backfill runs on'],
      ['backfill wait shop-2024 --timeout 300', 'a bare number counts seconds'],
    ],
  },
  pause: {
    group: HELP_GROUPS.control,
    examples: [['backfill pause shop-2024', 'no new partition starts; running ones finish (resume with backfill resume)']],
  },
  cancel: {
    group: HELP_GROUPS.control,
    examples: [['backfill cancel shop-2024', 'running partitions stop at their next heartbeat; nothing half-written is published']],
  },
  resume: {
    group: HELP_GROUPS.control,
    examples: [
      ['backfill resume shop-2024', 'un-pauses a running backfill, or goes on with a cancelled or failed one (published partitions are skipped)'],
      ['backfill resume shop-2024 --spec fixed.yaml', 'goes on with a fixed spec: same nodes and partitions, new SQL, parameters, checks or limits'],
    ],
  },
  'retry-failed': {
    group: HELP_GROUPS.control,
    examples: [
      ['backfill retry-failed shop-2024', 'runs the failed partitions again, then the partitions they blocked'],
      ['backfill retry-failed shop-2024 --node orders_clean --spec fixed.yaml', "only orders_clean's failures, with the fixed spec"],
    ],
  },
  'set-rate': {
    group: HELP_GROUPS.control,
    examples: [
      ['backfill set-rate shop-2024 10 --node orders_clean', 'orders_clean starts at most 10 partitions a second'],
      ['backfill set-rate shop-2024 50', 'the whole backfill: 50 a second, shared by the nodes with work (a node never exceeds its own rate)'],
      ['backfill set-rate shop-2024 unlimited', 'no backfill-wide rate; each node keeps its own'],
    ],
  },
  'set-concurrency': {
    group: HELP_GROUPS.control,
    examples: [
      ['backfill set-concurrency shop-2024 2 --node orders_clean', 'at most 2 partitions of orders_clean at once'],
      ['backfill set-concurrency shop-2024 32', 'at most 32 partitions at once in all (a node never exceeds its own concurrency)'],
    ],
  },
  'set-queue-rate': {
    group: HELP_GROUPS.control,
    examples: [
      ['backfill set-queue-rate warehouse 20', 'the server starts at most 20 activities a second from task queue warehouse, across all its workers'],
      ['backfill set-queue-rate warehouse unlimited', "removes that cap (the workers' --task-queue warehouse=<rate> applies again)"],
    ],
  },
  lineage: {
    group: HELP_GROUPS.audit,
    examples: [
      ['backfill lineage daily_revenue 2024-03-01', 'every version of the partition: backfill, transform, parameters, code and input versions, rollbacks'],
      ['backfill lineage weekly_revenue 2024-W09 --warehouse postgres://backfill@db.internal:5432/warehouse --json', 'from a PostgreSQL warehouse, as JSON'],
    ],
  },
  report: {
    group: HELP_GROUPS.audit,
    examples: [
      ['backfill report shop-2024', 'writes report-shop-2024.html: one self-contained file with a timeline picture'],
      ['backfill report shop-2024 --output shop-2024.md', 'Markdown (the format follows the file name)'],
      ['backfill report shop-2024 --format json --output -', 'the report model as JSON, on stdout'],
    ],
  },
  rollback: {
    group: HELP_GROUPS.audit,
    examples: [
      ['backfill rollback shop-2024', 'every partition it published goes back to its version before it; exit 2 if some were left alone'],
      ['backfill rollback shop-2024 --force', 'also those a later backfill changed since, undoing those changes'],
    ],
  },
  worker: {
    group: HELP_GROUPS.infra,
    examples: [
      ['backfill worker --transforms ./transforms.ts', "the workflows and the 'backfill' activity queue, with your transforms"],
      ['backfill worker --no-workflows --task-queue warehouse=20 --max-concurrent-activities 8', "only the 'warehouse' queue: 20 activities/s across all its workers, 8 at once on this one"],
      ['backfill worker --metrics-port 9464 --log-format json', 'Prometheus metrics on :9464/metrics, one JSON log line per event'],
    ],
  },
  dev: {
    group: HELP_GROUPS.infra,
    examples: [
      ['backfill dev', 'the Temporal dev server (Web UI on http://localhost:8233) and a worker with the example transforms'],
      ['backfill dev --transforms ./transforms.ts', 'with your transforms instead'],
      ['backfill dev --no-worker', 'the server only; run workers yourself'],
    ],
  },
  demo: {
    group: HELP_GROUPS.infra,
    examples: [['backfill demo', 'a dev server, a worker and the example backfill with live bars; exit 0 when it completed']],
  },
  setup: {
    group: HELP_GROUPS.infra,
    examples: [
      ['backfill setup', 'registers the search attributes on the namespace of TEMPORAL_NAMESPACE (needs admin rights)'],
      ['backfill setup --namespace analytics', 'on namespace analytics'],
    ],
  },
  init: {
    group: HELP_GROUPS.infra,
    examples: [['backfill init my-pipeline', 'a new pipeline project in ./my-pipeline']],
  },
};

/** The examples as the end of a command's help. */
export function examplesText(examples: readonly Example[]): string {
  const lines = examples.flatMap(([command, does]) => [`  $ ${command}`, `      ${does}`]);
  return `\nExamples:\n${lines.join('\n')}\n`;
}

/** What `backfill --help` ends with: first steps, where connection settings come from, exit codes. */
export function topLevelHelpText(): string {
  return [
    '',
    'Examples:',
    '  $ backfill demo',
    '  $ backfill plan examples/shop/backfill.yaml',
    '  $ backfill start examples/shop/backfill.yaml --id shop-2024 --watch',
    '  $ backfill status shop-2024',
    '',
    "Run 'backfill <command> --help' for a command's options and examples. Every command takes --json.",
    '',
    'Connection: --address, --namespace and --profile win over TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,',
    'TEMPORAL_API_KEY, TEMPORAL_TLS_* and the profiles of the Temporal config file (TEMPORAL_CONFIG_FILE).',
    '',
    'Exit codes:',
    ...exitCodeLines(),
    '',
  ].join('\n');
}

/**
 * The `backfill` program's command class: each subcommand gets its help group and its examples
 * from COMMAND_HELP as it is created.
 */
export class BackfillCommand extends Command {
  override createCommand(name?: string): Command {
    const command = new BackfillCommand(name);
    const help = name === undefined ? undefined : COMMAND_HELP[name];
    if (help) command.helpGroup(help.group).addHelpText('after', examplesText(help.examples));
    // Commander's own `help [command]`, last.
    if (name === 'help') command.helpGroup('Help:');
    return command;
  }
}
