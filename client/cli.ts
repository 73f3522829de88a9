/**
 * The `backfill` command line: the program, its global options, and one module per command
 * under client/commands/. Every command takes --json for machine-readable output.
 *
 * Adding a command: write client/commands/<name>.ts exporting a function that returns the
 * command (`documented(new Command('<name>'), HELP_GROUPS.<group>, [examples])` with its
 * options and action), and add one line for it to COMMANDS below. The program loads a
 * command's module only when the command line names it (or lists every command, for the
 * top-level help). Keep the module's own imports light (commander, the shared options, help):
 * import what the action needs inside the action, so that `--help` stays quick and a command
 * pays only for what it uses.
 */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { BackfillError } from '../core/errors.ts';
import { redactSecrets } from './secrets.ts';
import { printableLines } from './printable.ts';
import { packageJson } from '../host/package.ts';
import { settingsFromEnv } from '../host/settings.ts';
import { EXIT } from './exit-codes.ts';
import { shellWord } from '../core/shell-word.ts';
import { topLevelHelpText } from './help.ts';

export { EXIT, exitCodeFor } from './exit-codes.ts';

/**
 * The program's command class: a command added to it inherits the program's settings (errors
 * reach main() instead of exiting inside commander, help after an error, red errors), as one
 * made with `.command()` would.
 */
class Program extends Command {
  override addCommand(command: Parameters<Command['addCommand']>[0], options?: Parameters<Command['addCommand']>[1]): this {
    command.copyInheritedSettings(this);
    return super.addCommand(command, options);
  }

  override createCommand(name?: string): Command {
    // Only commander's own `help [command]` is made here: listed last, in a group of its own.
    const command = new Command(name);
    if (name === 'help') command.helpGroup('Help:');
    return command;
  }
}

/**
 * Each command by name, in the order `backfill --help` lists them, with the module that makes it.
 * A module is loaded only when the command line needs its command (commandsFor), so that
 * `--version` loads none and `status` loads only its own.
 */
const COMMANDS = {
  plan: async () => (await import('./commands/plan.ts')).planCommand(),
  start: async () => (await import('./commands/start.ts')).startCommand(),
  status: async () => (await import('./commands/status.ts')).statusCommand(),
  wait: async () => (await import('./commands/wait.ts')).waitCommand(),
  policy: async () => (await import('./commands/policy.ts')).policyCommand(),
  pause: async () => (await import('./commands/pause.ts')).pauseCommand(),
  cancel: async () => (await import('./commands/cancel.ts')).cancelCommand(),
  resume: async () => (await import('./commands/resume.ts')).resumeCommand(),
  'retry-failed': async () => (await import('./commands/retry-failed.ts')).retryFailedCommand(),
  'set-rate': async () => (await import('./commands/set-rate.ts')).setRateCommand(),
  'set-concurrency': async () => (await import('./commands/set-concurrency.ts')).setConcurrencyCommand(),
  'set-queue-rate': async () => (await import('./commands/set-queue-rate.ts')).setQueueRateCommand(),
  'set-budget': async () => (await import('./commands/set-budget.ts')).setBudgetCommand(),
  approve: async () => (await import('./commands/approve.ts')).approveCommand(),
  lineage: async () => (await import('./commands/lineage.ts')).lineageCommand(),
  diff: async () => (await import('./commands/staged.ts')).diffCommand(),
  publish: async () => (await import('./commands/staged.ts')).publishCommand(),
  discard: async () => (await import('./commands/staged.ts')).discardCommand(),
  rollback: async () => (await import('./commands/rollback.ts')).rollbackCommand(),
  report: async () => (await import('./commands/report.ts')).reportCommand(),
  audit: async () => (await import('./commands/audit.ts')).auditCommand(),
  init: async () => (await import('./commands/init.ts')).initCommand(),
  setup: async () => (await import('./commands/setup.ts')).setupCommand(),
  worker: async () => (await import('./commands/worker.ts')).workerCommand(),
  dev: async () => (await import('./commands/dev.ts')).devCommand(),
  demo: async () => (await import('./commands/demo.ts')).demoCommand(),
} satisfies Record<string, () => Promise<CommandUnknownOpts>>;

export type CommandName = keyof typeof COMMANDS;

export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

/** The program's own options, before any command's: each takes a value. */
const PROGRAM_OPTIONS = [
  ['--address <host:port>', "Temporal frontend (default $TEMPORAL_ADDRESS, the profile's address, or localhost:7233)"],
  ['--namespace <name>', "Temporal namespace (default $TEMPORAL_NAMESPACE, the profile's namespace, or default)"],
  ['--profile <name>', 'profile of the Temporal config file ($TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml; default $TEMPORAL_PROFILE or default)'],
] as const;

/** The program's options that take a value: the word after one is its value, not a command. */
const VALUE_OPTIONS = new Set<string>(PROGRAM_OPTIONS.map(([flags]) => flags.split(' ')[0]!));

const isCommandName = (word: string): word is CommandName => Object.hasOwn(COMMANDS, word);

/** The program's options that take no value. */
const FLAG_OPTIONS = new Set(['-h', '--help', '-V', '--version']);

/**
 * The command line as the program reads it before a command: the options written before the
 * first word that is not one (with the values of those that take one), and that word, if any.
 */
function beforeCommand(argv: readonly string[]): { args: string[]; options: number[]; word?: number } {
  const args = argv.slice(2);
  const options: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('-')) return { args, options, word: i };
    options.push(i);
    if (VALUE_OPTIONS.has(arg)) i++;
  }
  return { args, options };
}

/**
 * The commands the program needs to parse `argv` as it would with all of them: the one it names;
 * none for `--version` without a command (commander answers it from the program's options);
 * every one otherwise, for the top-level help, `help`, and the suggestion after a mistyped name.
 */
export function commandsFor(argv: readonly string[]): CommandName[] {
  const { args, word: at } = beforeCommand(argv);
  const word = at === undefined ? undefined : args[at]!;
  if (word !== undefined) return isCommandName(word) ? [word] : COMMAND_NAMES;
  const asksHelp = args.some((arg) => arg === '-h' || arg === '--help');
  const asksVersion = args.some((arg) => arg === '-V' || arg === '--version');
  return asksVersion && !asksHelp ? [] : COMMAND_NAMES;
}

/** Words a user may take for commands that are options of `plan`; commander would suggest an unrelated command for them. */
const PLAN_MODES: Readonly<Record<string, string>> = { explain: ' --explain', estimate: ' --estimate', validate: '' };

/**
 * The error for a command line the program would refuse with a misleading message: `backfill
 * explain <spec>` (the command is plan, with the option), and a command's option written before
 * the command (`backfill --json status x`: commander says only that it knows no --json).
 */
export function commandLineMistaken(argv: readonly string[]): BackfillError | undefined {
  const { args, options, word: at } = beforeCommand(argv);
  if (at === undefined) return undefined;
  const word = args[at]!;
  // Commander reads the program's --version anywhere: `rollback b2 --version 1` printed 0.1.0 and exited 0.
  const end = args.indexOf('--', at);
  const version = args.slice(at + 1, end === -1 ? undefined : end).find((arg) => arg === '-V' || arg === '--version' || arg.startsWith('--version='));
  if (version !== undefined && isCommandName(word)) {
    return new BackfillError('invalid_argument', `'backfill ${word}' has no option '${version.split('=')[0]}': 'backfill --version' alone prints backfill's version; run 'backfill ${word} --help' for its options`);
  }
  if (Object.hasOwn(PLAN_MODES, word)) {
    return new BackfillError('invalid_argument', `'${word}' is not a command: run 'backfill plan <spec>${PLAN_MODES[word]}' (it needs no server)`);
  }
  const misplacedAt = options.filter((i) => !VALUE_OPTIONS.has(args[i]!.split('=')[0]!) && !FLAG_OPTIONS.has(args[i]!));
  if (misplacedAt.length === 0 || !isCommandName(word)) return undefined;
  const misplaced = misplacedAt.map((i) => args[i]!);
  const kept = (from: number, to: number) => args.slice(from, to).filter((_, i) => !misplacedAt.includes(from + i));
  const moved = [...kept(0, at + 1), ...misplaced, ...args.slice(at + 1)].map(shellWord).join(' ');
  const names = misplaced.map((o) => `'${o}'`).join(', ');
  const program = [...VALUE_OPTIONS];
  return new BackfillError(
    'invalid_argument',
    `${names} ${misplaced.length === 1 ? 'is' : 'are'} written before the command '${word}': write a command's options after its name, as in backfill ${moved} ` +
      `(only ${program.slice(0, -1).join(', ')} and ${program.at(-1)} go before a command)`,
  );
}

/** The program with `commands` (every one unless named), each loaded from its module. */
export async function buildProgram(commands: readonly CommandName[] = COMMAND_NAMES) {
  const program = new Program().name('backfill').description('Durable, rate-limited backfills of partitioned datasets, on Temporal');
  for (const [flags, description] of PROGRAM_OPTIONS) program.option(flags, description);
  program
    .version(packageJson().version)
    .addHelpText('after', topLevelHelpText())
    // Before any command is added, so that each inherits it: a command's usage error then
    // reaches main() too (JSON with --json, exit code 1) instead of exiting inside commander.
    .exitOverride()
    .showHelpAfterError("(run 'backfill --help' for the commands)")
    .configureOutput({ outputError: (text, write) => write(pc.red(printableLines(text))) });
  for (const command of await Promise.all(commands.map((name) => COMMANDS[name]()))) {
    program.addCommand(command);
    // One line saying where the usage is, as a value refused in the action gets, not 70 lines of help.
    command.showHelpAfterError(`(run 'backfill ${command.name()} --help' for its usage)`);
  }
  return program;
}

function reportError(error: unknown, json: boolean): void {
  const failure =
    error instanceof BackfillError
      ? error
      : new BackfillError('failed', error instanceof Error ? error.message : String(error));
  // Whatever a call failed with, the connection's secrets (API key, gRPC metadata) are not printed.
  const shown = new BackfillError(failure.code, redactSecrets(failure.message), failure.path);
  // status without an answering worker adds what is last known of the backfill (client/last-known.ts).
  const extra = 'lastKnown' in failure ? { lastKnown: failure.lastKnown } : {};
  if (json) process.stdout.write(`${JSON.stringify({ error: shown.toJSON(), ...extra }, null, 2)}\n`);
  else process.stderr.write(`${pc.red('error:')} ${printableLines(shown.message)}\n`);
}

export async function main(argv = process.argv): Promise<void> {
  const json = argv.includes('--json');
  try {
    const mistaken = commandLineMistaken(argv);
    if (mistaken) throw mistaken;
    const program = await buildProgram(commandsFor(argv));
    // Adapters register their schemes before any command opens a warehouse; the registry loads only when some are named.
    const { warehouseAdapters } = settingsFromEnv();
    if (warehouseAdapters !== undefined) await (await import('../activities/warehouse/registry.ts')).loadWarehouseAdapters(warehouseAdapters);
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = EXIT.ok;
      return;
    }
    if (typeof code === 'string' && code.startsWith('commander.')) {
      if (json) reportError(new BackfillError('invalid_argument', (error as Error).message.replace(/^error: /, '')), true);
      process.exitCode = EXIT.error;
      return;
    }
    reportError(error, json);
    process.exitCode = EXIT.error;
  }
}
