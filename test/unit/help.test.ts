/** The command line's help, exit codes and duration flags, without a server. */
import { readFileSync, readdirSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli as cli } from './run-cli.ts';
import { BackfillError } from '../../core/errors.ts';
import type { ControlState } from '../../core/coordinator.ts';
import { cappedByOwnLimit, cappedLine, ownLimitsTogether } from '../../client/capped.ts';
import { COMMAND_NAMES, buildProgram, commandsFor, main } from '../../client/cli.ts';
import { parseDurationFlag } from '../../client/duration-flag.ts';
import { EXIT, EXIT_MEANINGS, type ExitName } from '../../client/exit-codes.ts';
import { HELP_GROUPS, examplesOf } from '../../client/help.ts';

const root = new URL('../../', import.meta.url);

/** What `backfill [command] --help` prints, addHelpText included. */
function helpOf(command: CommandUnknownOpts): string {
  let text = '';
  command.configureOutput({ writeOut: (chunk) => void (text += chunk) });
  command.outputHelp();
  return stripVTControlCharacters(text);
}

afterEach(() => vi.restoreAllMocks());

/** The `code  meaning` lines under a heading of a help text. */
function exitTable(help: string): Array<[number, string]> {
  const lines = help.split('\n');
  const start = lines.indexOf('Exit codes:');
  expect(start, 'an "Exit codes:" section').toBeGreaterThanOrEqual(0);
  const rows: Array<[number, string]> = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^ {2}(\d+) {2}(.+)$/.exec(line);
    if (!m) break;
    rows.push([Number(m[1]), m[2]!]);
  }
  return rows;
}

const expectedExitRows = (): Array<[number, string]> => (Object.keys(EXIT) as ExitName[]).map((name) => [EXIT[name], EXIT_MEANINGS[name]]);

const program = await buildProgram();

describe('help', () => {

  it("answers a value commander refuses with the error and one line naming the command's help, not the whole help (70 lines for start)", async () => {
    const cases: Array<[string[], string, string]> = [
      [['start', 'spec.yaml', '--priority', '9'], "--priority must be a whole number from 1 to 5", "(run 'backfill start --help' for its usage)"],
      [['set-budget', 'x', '--retries', '-1'], '--retries must be a whole number above 0', "(run 'backfill set-budget --help' for its usage)"],
      [['status'], "missing required argument 'id'", "(run 'backfill status --help' for its usage)"],
      [['bogus'], "unknown command 'bogus'", "(run 'backfill --help' for the commands)"],
    ];
    for (const [args, error, hint] of cases) {
      const { stderr, code } = await cli(...args);
      const lines = stripVTControlCharacters(stderr).trim().split('\n');
      expect(code, args.join(' ')).toBe(EXIT.error);
      expect(lines, args.join(' ')).toHaveLength(2);
      expect(lines[0]).toContain(error);
      expect(lines[1]).toBe(hint);
    }
  });

  it('files every command under one of the groups, with examples', () => {
    const groups: string[] = Object.values(HELP_GROUPS);
    for (const command of program.commands) {
      expect(groups, command.name()).toContain(command.helpGroup());
      expect(examplesOf(command)?.length ?? 0, `examples of ${command.name()}`).toBeGreaterThan(0);
    }
  });

  it('says where --warehouse defaults to, BACKFILL_HOME included (where the SQLite file goes when it is set)', () => {
    const withWarehouse = program.commands.filter((c) => c.options.some((o) => o.long === '--warehouse'));
    expect(withWarehouse.map((c) => c.name())).toContain('worker');
    for (const command of withWarehouse) {
      const option = command.options.find((o) => o.long === '--warehouse')!;
      expect(option.description, command.name()).toContain('(default .backfill/warehouse.db, or warehouse.db in $BACKFILL_HOME when set)');
    }
  });

  it('shows one default for a duration flag, as a duration the flag reads back (status --interval said "default 1s" and "(default: 1000)", 1000 s by its own help)', () => {
    const all = (c: CommandUnknownOpts): CommandUnknownOpts[] => [c, ...c.commands.flatMap(all)];
    const defaulted = all(program).flatMap((c) => c.options.filter((o) => o.flags.includes('<duration>') && o.defaultValue !== undefined).map((o) => ({ c, o })));
    expect(defaulted.map(({ c, o }) => `${c.name()} ${o.long}`)).toEqual(expect.arrayContaining(['status --interval', 'worker --shutdown-grace']));
    for (const { c, o } of defaulted) {
      const where = `${c.name()} ${o.long}`;
      expect(o.description, where).not.toMatch(/default/);
      const shown = /\(default: ([^)]+)\)/.exec(c.createHelp().optionDescription(o))?.[1];
      expect(shown, where).toBeDefined();
      expect(parseDurationFlag(o.long!, shown!), where).toBe(o.defaultValue);
    }
  });

  it("ends every command's help with its examples", () => {
    for (const command of program.commands) {
      const text = helpOf(command);
      const examples = text.slice(text.indexOf('\nExamples:\n'));
      expect(text, command.name()).toContain('\nExamples:\n');
      for (const [line, does] of examplesOf(command)!) {
        expect(examples).toContain(`  $ ${line}\n`);
        expect(examples).toContain(does);
      }
    }
  });

  it("says of resume and retry-failed --spec what a new spec changes: not the backfill-wide limits (before, resume's said it changed 'limits')", () => {
    for (const name of ['resume', 'retry-failed']) {
      const spec = program.commands.find((c) => c.name() === name)!.options.find((o) => o.long === '--spec')!.description;
      expect(spec, name).toContain("node settings (retry, batch size, timeouts, task queue, and a node's rate and concurrency unless set-rate/set-concurrency --node set them)");
      expect(spec, name).toContain('Not the backfill-wide rate and concurrency: those stay (give them with --rate, --concurrency; to a running backfill, set-rate, set-concurrency)');
      expect(spec, name).not.toMatch(/checks or limits/);
    }
  });

  it('gives examples that the command line accepts, each under its own command', async () => {
    // A program whose actions do nothing: parsing checks the arguments, options and their values.
    const parsed: string[] = [];
    const dry = (await buildProgram()).exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const command of dry.commands) {
      command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      command.action(() => void parsed.push(command.name()));
    }
    for (const command of dry.commands) {
      for (const [line] of examplesOf(command)!) {
        const words = line.split(/\s+/);
        expect(words[0]).toBe('backfill');
        expect(words[1], line).toBe(command.name());
        parsed.length = 0;
        await expect(dry.parseAsync(['node', ...words]), line).resolves.toBeDefined();
        expect(parsed, line).toEqual([command.name()]);
      }
    }
  });

  it("names in its examples the spec backfill init writes, not the repository's examples/ (an installed package has none)", () => {
    for (const text of [helpOf(program), ...program.commands.map(helpOf)]) expect(text).not.toContain('examples/');
    expect(helpOf(program)).toContain('$ backfill plan backfill.yaml\n');
  });

  it('says where --json goes: every command takes it, the bare program does not', async () => {
    for (const command of program.commands.filter((c) => c.name() !== 'help')) expect(command.options.map((o) => o.long), command.name()).toContain('--json');
    expect(helpOf(program)).toMatch(/Every command takes --json\nafter its name .*; backfill alone does not\./);
    expect((await cli('--json')).code).toBe(EXIT.error);
  });

  it('lists the commands in groups, and the exit codes equal to EXIT', () => {
    const text = helpOf(program);
    for (const group of Object.values(HELP_GROUPS)) {
      if (program.commands.some((c) => c.helpGroup() === group)) expect(text).toContain(`\n${group}\n`);
    }
    expect(text).toMatch(/\nPlan and run:\n {2}plan .*\n {2}start .*\n {2}status .*\n {2}wait /);
    expect(exitTable(text)).toEqual(expectedExitRows());
  });
});

describe('the commands a command line loads', () => {
  const argv = (...args: string[]) => ['node', 'backfill', ...args];

  it('are each named as its key', async () => {
    expect((await buildProgram()).commands.map((c) => c.name())).toEqual(COMMAND_NAMES);
  });

  it('are the one the command line names, past the program\'s options and their values', () => {
    expect(commandsFor(argv('status', 'shop-2024', '--json'))).toEqual(['status']);
    expect(commandsFor(argv('--address', 'plan', '--namespace=x', 'status', 'x'))).toEqual(['status']);
    expect(commandsFor(argv('--profile', 'prod', 'pause', 'x', '--version'))).toEqual(['pause']);
    expect(commandsFor(argv('set-rate', '--help'))).toEqual(['set-rate']);
  });

  it('are none for --version alone, and every one for the top-level help, `help` and a name commander does not know', () => {
    expect(commandsFor(argv('--version'))).toEqual([]);
    expect(commandsFor(argv('-V', '--address', 'x'))).toEqual([]);
    for (const args of [[], ['--help'], ['-h', '--version'], ['help', 'status'], ['stats', 'x'], ['--', 'status']]) {
      expect(commandsFor(argv(...args)), args.join(' ')).toEqual(COMMAND_NAMES);
    }
  });

  it('answer --version, a command\'s help and a mistyped name as the whole program does', async () => {
    const version = await cli('--version');
    expect(version).toEqual({ stdout: `${JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).version}\n`, stderr: '', code: EXIT.ok });
    const alone = await cli('status', '--help');
    expect(alone.code).toBe(EXIT.ok);
    expect(alone.stdout).toBe(helpOf((await buildProgram()).commands.find((c) => c.name() === 'status')!));
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    const before = process.exitCode;
    try {
      await main(['node', 'backfill', 'stauts', 'x']);
      expect(process.exitCode).toBe(EXIT.error);
    } finally {
      process.exitCode = before;
    }
    expect(stripVTControlCharacters(stderr)).toContain('(Did you mean status?)');
  });

  it("takes explain, estimate and validate for what they are: plan's options, not commands (commander suggested set-rate for estimate)", async () => {
    const explain = await cli('explain', 'spec.yaml');
    expect(explain.code).toBe(EXIT.error);
    expect(stripVTControlCharacters(explain.stderr)).toBe("error: 'explain' is not a command: run 'backfill plan <spec> --explain' (it needs no server)\n");
    const estimate = await cli('--address', 'localhost:7233', 'estimate', 'spec.yaml', '--json');
    expect(JSON.parse(estimate.stdout)).toEqual({ error: { code: 'invalid_argument', message: "'estimate' is not a command: run 'backfill plan <spec> --estimate' (it needs no server)" } });
    expect(stripVTControlCharacters((await cli('validate', 'spec.yaml')).stderr)).toContain("run 'backfill plan <spec>' (it needs no server)");
    // A command's argument of that name is left alone.
    expect((await cli('plan', 'explain')).stderr).not.toContain('is not a command');
  });

  it("says where a command's option goes when it is written before the command (commander said only: unknown option)", async () => {
    const before = await cli('--json', 'status', 'shop-2024');
    expect(before.code).toBe(EXIT.error);
    expect(JSON.parse(before.stdout)).toEqual({
      error: {
        code: 'invalid_argument',
        message: "'--json' is written before the command 'status': write a command's options after its name, as in backfill status --json shop-2024 (only --address, --namespace and --profile go before a command)",
      },
    });
    // The program's own options stay where they are, a value equal to the command's name included.
    const both = await cli('--profile', 'status', '--watch', '-x', 'status', 'it is');
    expect(stripVTControlCharacters(both.stderr)).toContain("'--watch', '-x' are written before the command 'status': write a command's options after its name, as in backfill --profile status status --watch -x it\\ is");
    // Not a command: commander's own suggestion stands.
    expect(stripVTControlCharacters((await cli('--json', 'stauts', 'x')).stdout)).not.toContain('written before');
    expect((await cli('--address', 'localhost:7233', '--version')).code).toBe(EXIT.ok);
  });

  it("refuses --version after a command (commander printed the version and exited 0 for 'rollback b2 --version 1')", async () => {
    const after = await cli('rollback', 'b2', '--version', '1');
    expect(after.code).toBe(EXIT.error);
    expect(after.stdout).not.toContain('0.');
    expect(stripVTControlCharacters(after.stderr)).toBe("error: 'backfill rollback' has no option '--version': 'backfill --version' alone prints backfill's version; run 'backfill rollback --help' for its options\n");
    const short = await cli('status', 'b2', '-V', '--json');
    expect(JSON.parse(short.stdout)).toEqual({ error: { code: 'invalid_argument', message: "'backfill status' has no option '-V': 'backfill --version' alone prints backfill's version; run 'backfill status --help' for its options" } });
    // After '--' it is an argument, and before a command the program's option.
    expect((await cli('plan', '--', '--version')).stderr).not.toContain('has no option');
    expect((await cli('-V', 'status')).code).toBe(EXIT.ok);
  });

  it("refuses publish's --partial on discard, which one builder makes too", async () => {
    const discard = await cli('discard', 'b2', '--partial', '--json');
    expect(discard.code).toBe(EXIT.error);
    expect(JSON.parse(discard.stdout)).toEqual({ error: { code: 'invalid_argument', message: "'backfill discard' has no option '--partial' (publish's): a discard drops every staged version" } });
  });

  it('takes a spec written in place of policy\'s action for what it is, naming the actions and the command line', async () => {
    const left = await cli('policy', 'examples/shop/backfill.yaml');
    expect(left.code).toBe(EXIT.error);
    const said = stripVTControlCharacters(left.stderr);
    expect(said).toContain("'examples/shop/backfill.yaml' is not an action (policy's actions: check): write the action before the spec, as in backfill policy check examples/shop/backfill.yaml");
    expect(said).not.toContain('missing required argument');
    expect(stripVTControlCharacters((await cli('policy', 'chek', 'examples/shop/backfill.yaml')).stderr)).toContain("policy has no action 'chek' (did you mean check?)");
    const noSpec = await cli('policy', 'check');
    expect(noSpec.code).toBe(EXIT.error);
    expect(stripVTControlCharacters(noSpec.stderr)).toContain("error: missing required argument 'spec': write backfill policy check <spec>");
  });
});

describe('exit codes', () => {
  it('are set only through EXIT or exitCodeFor', () => {
    const dir = new URL('client/', root);
    const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const assignments = sources.flatMap((file) =>
      readFileSync(new URL(file, dir), 'utf8')
        .split('\n')
        .filter((line) => /process\.exitCode\s*=/.test(line))
        .map((line) => ({ file, line: line.trim() })),
    );
    expect(assignments.length).toBeGreaterThan(0);
    for (const { file, line } of assignments) {
      expect(line, `${file}: ${line}`).toMatch(/process\.exitCode = (EXIT\.\w+|exitCodeFor\()/);
    }
  });

  it('are the table of docs/operations.md', () => {
    const doc = readFileSync(new URL('docs/operations.md', root), 'utf8');
    const rows = [...doc.matchAll(/^\| `(\d+)` \| (.+) \|$/gm)].map((m): [number, string] => [Number(m[1]), m[2]!]);
    expect(rows).toEqual(expectedExitRows());
  });

  it('are 1 for a malformed duration, before anything connects', async () => {
    const wait = await cli('wait', 'x', '--timeout', 'soon', '--json');
    expect(wait.code).toBe(EXIT.error);
    expect(JSON.parse(wait.stdout).error).toEqual({
      code: 'invalid_argument',
      message: "--timeout 'soon' is not a duration: write e.g. 300 (seconds), 90s, 30m or 2h",
      path: 'timeout',
    });
    const status = await cli('status', 'x', '--watch', '--interval', '1000', '--json');
    expect(status.code).toBe(EXIT.error);
    expect(JSON.parse(status.stdout).error.message).toBe("--interval '1000' must be from 100ms to 10m (a bare number counts seconds: 1000 is 1000s)");
  });

  it('are 1 for a --priority outside 1-5, before anything connects', async () => {
    const start = await cli('start', 'examples/shop/backfill.yaml', '--priority', '7', '--json');
    expect(start.code).toBe(EXIT.error);
    expect(JSON.parse(start.stdout).error).toEqual({
      code: 'invalid_argument',
      message: "option '--priority <1-5>' argument '7' is invalid. --priority must be a whole number from 1 to 5 (1 is the most urgent) (got '7')",
    });
  });

  it('are 1 for a policy check --priority outside 1-5, as for start', async () => {
    const check = await cli('policy', 'check', 'examples/shop/backfill.yaml', '--priority', '9', '--json');
    expect(check.code).toBe(EXIT.error);
    expect(JSON.parse(check.stdout).error.message).toBe(
      "option '--priority <1-5>' argument '9' is invalid. --priority must be a whole number from 1 to 5 (1 is the most urgent) (got '9')",
    );
  });

  it('are 1 for a dev port that is not a whole number from 1 to 65535, naming the flag', async () => {
    for (const [flag, value] of [['--port', '7303.5'], ['--port', '70000'], ['--ui-port', '0']]) {
      const dev = await cli('dev', flag!, value!, '--json');
      expect(dev.code).toBe(EXIT.error);
      expect(JSON.parse(dev.stdout).error.message).toBe(`option '${flag} <port>' argument '${value}' is invalid. ${flag} must be a whole number from 1 to 65535 (got '${value}')`);
    }
  });

  it('are 0 for --help', async () => {
    expect((await cli('--help')).code).toBe(EXIT.ok);
    expect((await cli('wait', '--help')).code).toBe(EXIT.ok);
    expect((await cli('help', 'wait')).code).toBe(EXIT.ok);
  });

  it("are 1 for a subcommand's usage error, as JSON with --json", async () => {
    const unknown = await cli('wait', 'x', '--bogus', '--json');
    expect(unknown.code).toBe(EXIT.error);
    expect(JSON.parse(unknown.stdout)).toEqual({ error: { code: 'invalid_argument', message: "unknown option '--bogus'" } });
    const missing = await cli('set-rate', 'x', '--json');
    expect(missing.code).toBe(EXIT.error);
    expect(JSON.parse(missing.stdout).error.message).toBe("missing required argument 'per-second'");
  });
});

describe('parseDurationFlag', () => {
  it('reads a bare number as seconds, and every unit of the spec', () => {
    expect(parseDurationFlag('--timeout', '300')).toBe(300_000);
    expect(parseDurationFlag('--timeout', '1.5')).toBe(1500);
    expect(parseDurationFlag('--timeout', ' 600 ')).toBe(600_000);
    expect(parseDurationFlag('--timeout', '0')).toBe(0);
    expect(parseDurationFlag('--timeout', '500ms')).toBe(500);
    expect(parseDurationFlag('--timeout', '90s')).toBe(90_000);
    expect(parseDurationFlag('--timeout', '30m')).toBe(1_800_000);
    expect(parseDurationFlag('--timeout', '2h')).toBe(7_200_000);
    expect(parseDurationFlag('--timeout', '1d')).toBe(86_400_000);
  });

  it('refuses what is not a duration, naming the flag and how to write one', () => {
    for (const text of ['', 'soon', '-5', '5 minutes', '1h30m', '1e3', '.5']) {
      expect(() => parseDurationFlag('--wait-for-datasets', text), text).toThrow(BackfillError);
    }
    const error = (() => {
      try {
        parseDurationFlag('--wait-for-datasets', 'soon', {}, 'or give no value to wait as long as it takes');
      } catch (e) {
        return e as BackfillError;
      }
      return undefined;
    })();
    expect(error?.toJSON()).toEqual({
      code: 'invalid_argument',
      message: "--wait-for-datasets 'soon' is not a duration: write e.g. 300 (seconds), 90s, 30m or 2h, or give no value to wait as long as it takes",
      path: 'wait-for-datasets',
    });
  });

  it('holds a duration to its bounds', () => {
    const bounds = { minMs: 100, maxMs: 600_000 };
    expect(parseDurationFlag('--interval', '5s', bounds)).toBe(5000);
    expect(parseDurationFlag('--interval', '0.5', bounds)).toBe(500);
    expect(() => parseDurationFlag('--interval', '50ms', bounds)).toThrow("--interval '50ms' must be from 100ms to 10m");
    expect(() => parseDurationFlag('--interval', '2000', bounds)).toThrow('a bare number counts seconds: 2000 is 2000s');
    expect(() => parseDurationFlag('--interval', '1ms', { minMs: 100 })).toThrow("--interval '1ms' must be at least 100ms");
  });

  it('gives examples of a duration within the bounds, and the bounds, when the usual ones do not all fit', async () => {
    const bounds = { minMs: 100, maxMs: 600_000 };
    expect(() => parseDurationFlag('--interval', 'abc', bounds)).toThrow(
      "--interval 'abc' is not a duration: write e.g. 300 (seconds), 500ms, 30s or 10m (from 100ms to 10m)",
    );
    expect(() => parseDurationFlag('--shutdown-grace', 'abc', { maxMs: 3_600_000 })).toThrow(
      "--shutdown-grace 'abc' is not a duration: write e.g. 300 (seconds), 500ms, 90s or 30m (up to 1h)",
    );
    expect(() => parseDurationFlag('--assume', 'abc', { minMs: 3_600_000 })).toThrow("--assume 'abc' is not a duration: write e.g. 2h or 1d (at least 1h)");
    const status = await cli('status', 'x', '--interval', 'abc', '--json');
    expect(JSON.parse(status.stdout).error.message).toBe("--interval 'abc' is not a duration: write e.g. 300 (seconds), 500ms, 30s or 10m (from 100ms to 10m)");
  });
});

describe('set-rate and set-concurrency without --node', () => {
  const state: ControlState = {
    paused: false,
    rate: 50,
    concurrency: 32,
    nodes: [
      { id: 'orders_raw', rate: null, concurrency: 8 },
      { id: 'orders_clean', rate: 10, concurrency: 64 },
      { id: 'daily_revenue', rate: 80, concurrency: 32 },
    ],
  };

  it('name the nodes whose own lower limit stays in force', () => {
    expect(cappedByOwnLimit(state, 'rate')).toEqual([{ node: 'orders_clean', limit: 10 }]);
    expect(cappedByOwnLimit(state, 'concurrency')).toEqual([{ node: 'orders_raw', limit: 8 }]);
  });

  it('count every own limit as lower than an unlimited backfill', () => {
    const unlimited = { ...state, rate: null, concurrency: null };
    expect(cappedByOwnLimit(unlimited, 'rate')).toEqual([
      { node: 'orders_clean', limit: 10 },
      { node: 'daily_revenue', limit: 80 },
    ]);
    expect(cappedByOwnLimit(unlimited, 'concurrency').map((c) => c.node)).toEqual(['orders_raw', 'orders_clean', 'daily_revenue']);
  });

  it('say so in one line, with the command that changes one node', () => {
    // orders_raw's 8 leaves the backfill's 32 within reach of the three together (8 + 64 + 32).
    expect(cappedLine('shop-2024', 'concurrency', state, [{ node: 'orders_raw', limit: 8 }])).toBe(
      "\n  each capped lower alone by its own concurrency: orders_raw 8; together they can reach 32 (raise one with 'backfill set-concurrency shop-2024 <n> --node <node>')",
    );
    // orders_raw has no rate of its own: together they can reach any.
    expect(cappedLine('shop-2024', 'rate', state, [{ node: 'orders_clean', limit: 10 }])).toBe(
      "\n  each capped lower alone by its own rate: orders_clean 10/s; together they can reach 50/s (raise one with 'backfill set-rate shop-2024 <per-second> --node <node>')",
    );
    expect(cappedLine('shop-2024', 'rate', state, [])).toBe('');
  });

  it('say when all of them together stay below the backfill-wide limit (the trial: 4, 4 and 4 under 6 were said to be capped lower)', () => {
    const three = (concurrency: number | null): ControlState => ({
      paused: false,
      rate: null,
      concurrency,
      nodes: ['events', 'daily', 'weekly'].map((id) => ({ id, rate: null, concurrency: 4 })),
    });
    const capped = (s: ControlState) => cappedByOwnLimit(s, 'concurrency');
    expect(ownLimitsTogether(three(6), 'concurrency')).toBe(12);
    expect(ownLimitsTogether(three(6), 'rate')).toBeNull();
    expect(cappedLine('x', 'concurrency', three(6), capped(three(6)))).toContain('each capped lower alone by its own concurrency: events 4, daily 4, weekly 4; together they can reach 6 (');
    expect(cappedLine('x', 'concurrency', three(20), capped(three(20)))).toContain('capped lower by their own concurrency, 12 all together: events 4, daily 4, weekly 4 (');
    expect(cappedLine('x', 'concurrency', three(null), capped(three(null)))).toContain('capped lower by their own concurrency, 12 all together: ');
  });

});
