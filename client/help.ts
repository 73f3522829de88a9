/**
 * The command line's help beyond what commander writes from the options: the group each
 * command is listed under in `backfill --help`, examples at the end of every command's help,
 * and the top-level help's examples, connection settings and exit codes.
 *
 * Each command's module files it under its group and gives its examples with `documented`; a
 * command without them fails test/unit/help.test.ts, which also parses every example.
 */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { exitCodeLines } from './exit-codes.ts';
import { PROJECT_SPEC } from './project.ts';

/** One example: a command line (no shell syntax: the help test parses it) and what it does. */
export type Example = readonly [command: string, does: string];

/** Groups of the top-level help, in the order they are listed. */
export const HELP_GROUPS = {
  run: 'Plan and run:',
  control: 'Control a backfill:',
  audit: 'Audit and undo:',
  infra: 'Workers, servers and setup:',
} as const;

export type HelpGroup = (typeof HELP_GROUPS)[keyof typeof HELP_GROUPS];

/**
 * The spec the examples name: the one `backfill init` writes. An installed package holds no
 * examples/ folder (the shop example ships compiled, inside dist/).
 */
export const SPEC_IN_EXAMPLES = PROJECT_SPEC;

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
    '  $ backfill init my-pipeline',
    `  $ backfill plan ${SPEC_IN_EXAMPLES}`,
    `  $ backfill start ${SPEC_IN_EXAMPLES} --id shop-2024 --watch`,
    '  $ backfill status shop-2024 --json',
    '',
    "Run 'backfill <command> --help' for a command's options and examples. Every command takes --json",
    "after its name for machine-readable output (backfill status <id> --json); backfill alone does not.",
    '',
    'Connection: --address, --namespace and --profile win over TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,',
    'TEMPORAL_API_KEY, TEMPORAL_TLS_* and the profiles of the Temporal config file (TEMPORAL_CONFIG_FILE).',
    '',
    'Exit codes:',
    ...exitCodeLines(),
    '',
  ].join('\n');
}

const EXAMPLES = new WeakMap<CommandUnknownOpts, readonly Example[]>();

/** Files `command` under `group` in `backfill --help`, and ends its help with `examples`. */
export function documented<C extends CommandUnknownOpts>(command: C, group: HelpGroup, examples: readonly Example[]): C {
  EXAMPLES.set(command, examples);
  command.helpGroup(group).addHelpText('after', examplesText(examples));
  return command;
}

/** The examples a command was documented with. */
export function examplesOf(command: CommandUnknownOpts): readonly Example[] | undefined {
  return EXAMPLES.get(command);
}
