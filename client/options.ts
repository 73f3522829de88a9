/**
 * Options that several commands share, defined once: commander parses them, fills them from
 * the environment (`.env()`) and holds them to their allowed values (`.choices()`). Like every
 * module the program loads before it knows the command, this one imports nothing heavy.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { BackfillError } from '../core/errors.ts';
import type { ConnectionOverrides } from './connection.ts';
import { parseDurationFlag } from './duration-flag.ts';
import { terminalText } from './printable.ts';

export const jsonOption = (help = 'machine-readable output') => new Option('--json', help);

/** How often `--watch` looks (`status --watch`, `start --watch`): a duration from 100 ms to 10 minutes. */
const WATCH_INTERVAL_BOUNDS = { minMs: 100, maxMs: 600_000 };

/** `--interval` of a command that takes `--watch`: how often it looks, in milliseconds (default 1 s). */
export const watchIntervalOption = () =>
  new Option('--interval <duration>', 'refresh interval with --watch, e.g. 500ms or 5s (a bare number counts seconds)')
    .argParser((v) => parseDurationFlag('--interval', v, WATCH_INTERVAL_BOUNDS))
    .default(1000, '1s');

/** The warehouse every command that reads or writes one takes. */
export const warehouseOption = () =>
  new Option('--warehouse <location>', 'the warehouse: a SQLite file, a postgres:// URL or a Parquet lake as lake:///directory (default .backfill/warehouse.db, or warehouse.db in $BACKFILL_HOME when set)').env('BACKFILL_WAREHOUSE');

export const codeVersionOption = (help = "the workers' code version, recorded in the ledger (default backfill@<package version>)") =>
  new Option('--code-version <version>', help).env('BACKFILL_CODE_VERSION');

/** The policy file a worker judges backfills by (docs/governance.md); every worker of the workflow task queue needs the same one. */
export const policyOption = (help = "the policy file backfills are judged by (docs/governance.md); give every worker of the workflow task queue the same file") =>
  new Option('--policy <file>', help).env('BACKFILL_POLICY');

/** A policy named blank (an empty BACKFILL_POLICY) is a mistake, not "no policy": a worker without one admits what others refuse. */
export function policyPath(given: string): string {
  if (given.trim() === '') {
    throw new BackfillError('invalid_argument', '--policy (or BACKFILL_POLICY) is empty: give the policy file\'s path, or unset BACKFILL_POLICY to run without a policy', 'policy');
  }
  return given;
}

/** --reason: why an operator does what they do, kept in the backfill's audit trail (the policy may require it). */
export const reasonOption = (help = "why, kept in the backfill's audit trail (the policy may require one)") => new Option('--reason <text>', help);

/** --sign-key of resume and retry-failed: signs the new run of an ended backfill (refused for one that still runs). */
export const goOnSignKeyOption = (command: 'resume' | 'retry-failed') =>
  new Option(
    '--sign-key <file>',
    `sign the new run of an ended backfill with this ssh-ed25519 key (or its .pub when the key is in ssh-agent), as a policy with approval.signedStart wants: the signature covers the ${command}, the plan, where the ended run stopped and the reason (refused for a backfill that still runs)`,
  );

/** --rate and --concurrency: the backfill-wide limits of a start, or of the new run resume or retry-failed starts (parsed by limitsAsked). */
export const rateOption = (help: string) => new Option('--rate <per-second>', help);
export const concurrencyOption = (help: string) => new Option('--concurrency <n>', help);

/** --rate and --concurrency of resume and retry-failed: the new run of an ended backfill goes on with them (refused for a backfill that still runs). */
/**
 * `--spec` of resume and retry-failed: what a new spec changes. The backfill-wide limits are the
 * backfill's, not the spec's (carried from run to run; the coordinator takes no others).
 */
export const goOnSpecHelp = (action: string) =>
  `${action} with this spec (the same nodes and partitions): its transforms, SQL, parameters, checks and node settings (retry, batch size, timeouts, task queue, ` +
  `and a node's rate and concurrency unless set-rate/set-concurrency --node set them). Not the backfill-wide rate and concurrency: those stay (give them with --rate, --concurrency; to a running backfill, set-rate, set-concurrency)`;

export const goOnRateOption = () =>
  rateOption("the new run's backfill-wide rate, partitions per second (or 'unlimited'), in place of the last admitted run's; the policy judges it as a start's (refused for a backfill that still runs: use set-rate)");
export const goOnConcurrencyOption = () =>
  concurrencyOption("the new run's backfill-wide limit on activities running at once, a partition or a batch each (or 'unlimited'), in place of the last admitted run's; the policy judges it as a start's (refused for a backfill that still runs: use set-concurrency)");

export const LOG_FORMATS = ['text', 'json'] as const;

export const logFormatOption = (help: string) => new Option('--log-format <format>', help).choices(LOG_FORMATS).env('BACKFILL_LOG_FORMAT');

/** --transforms: module paths; from $BACKFILL_TRANSFORMS, a comma-separated list. */
export const transformsOption = (help: string) => new Option('--transforms <module...>', `${help}; in the variable, comma-separated`).env('BACKFILL_TRANSFORMS');

/**
 * The transform modules an option holds: as given on the command line, or split from the
 * comma-separated $BACKFILL_TRANSFORMS (trimmed, empty entries dropped).
 */
export function transformsGiven(command: CommandUnknownOpts, values: readonly string[] | undefined): string[] {
  if (values === undefined) return [];
  if (command.getOptionValueSource('transforms') !== 'env') return [...values];
  return values.flatMap((value) => value.split(',')).map((m) => m.trim()).filter(Boolean);
}

export function positiveInteger(label: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${label} must be a whole number above 0 (got '${value}')`);
    // Beyond it a number is rounded (99999999999999999999 reads as 1e20), and the worker's native core panics on such a slot count.
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${label} must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER} (got '${value}')`);
    return n;
  };
}

/** A whole number from `min` to `max`; `meaning` says what the ends mean, e.g. '1 is the most urgent'. */
export function integerFrom(label: string, min: number, max: number, meaning?: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${label} must be a whole number from ${min} to ${max}${meaning ? ` (${meaning})` : ''} (got '${value}')`);
    }
    return n;
  };
}

/** A TCP port to listen on, 1 to 65535. */
export const port = (label: string) => integerFrom(label, 1, 65_535);

/** --priority of start and policy check: the task-queue priority, 1 to 5. */
export const priorityOption = (help: string) => new Option('--priority <1-5>', help).argParser(integerFrom('--priority', 1, 5, '1 is the most urgent'));

export function positiveNumber(label: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${label} must be a number above 0 (got '${value}')`);
    return n;
  };
}

/** --fairness-weight of start and policy check: a backfill's share of a shared task queue. */
export const fairnessWeightOption = (help: string) => new Option('--fairness-weight <weight>', help).argParser(positiveNumber('--fairness-weight'));

/** --retry-budget and --cost-budget of start, and of policy check, which judges what start would ask for. */
export const retryBudgetOption = (help: string) => new Option('--retry-budget <attempts>', help).argParser(positiveInteger('--retry-budget'));
export const costBudgetOption = (help: string) => new Option('--cost-budget <amount>', help).argParser(positiveNumber('--cost-budget'));

/** The `budgets` that --retry-budget and --cost-budget ask for; nothing when neither is given. */
export function budgetsAsked(options: { retryBudget?: number | undefined; costBudget?: number | undefined }): { budgets?: { retries?: number; cost?: number } } {
  const { retryBudget, costBudget } = options;
  if (retryBudget === undefined && costBudget === undefined) return {};
  return { budgets: { ...(retryBudget !== undefined ? { retries: retryBudget } : {}), ...(costBudget !== undefined ? { cost: costBudget } : {}) } };
}

/** Whether the user gave an option on the command line (not its default, nor its variable). */
export function givenOnCommandLine(command: CommandUnknownOpts, key: string): boolean {
  return command.getOptionValueSource(key) === 'cli';
}

/**
 * --warehouse and --code-version serve --only-changed: given alone on the command line, they
 * would be ignored without a word. `usedAnyway` names those another flag uses too.
 */
export function checkOnlyChanged(command: CommandUnknownOpts, onlyChanged: boolean | undefined, usedAnyway: ReadonlyArray<'warehouse' | 'codeVersion'> = []): void {
  const given = (['warehouse', 'codeVersion'] as const)
    .filter((key) => !usedAnyway.includes(key) && givenOnCommandLine(command, key))
    .map((key) => (key === 'warehouse' ? '--warehouse' : '--code-version'));
  if (!onlyChanged && given.length > 0) {
    const what = given.length > 1 ? `${given.join(' and ')} only matter` : `${given[0]} only matters`;
    throw new BackfillError('invalid_argument', `${what} with --only-changed: add --only-changed, or leave ${given.length > 1 ? 'them' : 'it'} out`, 'only-changed');
  }
}

/** --address, --namespace and --profile (the program's), which win over Temporal's environment configuration. */
export function connectionFlags(command: CommandUnknownOpts): ConnectionOverrides {
  const { address, namespace, profile } = command.optsWithGlobals() as ConnectionOverrides;
  return {
    ...(address !== undefined ? { address } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(profile !== undefined ? { profile } : {}),
  };
}

/** Writes a command's answer: JSON with --json (which escapes control characters itself), else the human text as text. */
export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${terminalText(human())}\n`);
}
