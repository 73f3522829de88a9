/**
 * The docs against the command line, so that a flag cannot drift: every `backfill <command> ...`
 * of README.md and docs/*.md (in fenced blocks and inline code) names a command the program has
 * and uses only its flags, and parses where it holds no placeholder; a synopsis of `[--flag]`s
 * and a table of a command's flags (header `| flag |`) list every option it has, the table with
 * --help's defaults; and the environment variables the code reads are the ones the docs name.
 * Nothing runs: the program is only built.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../client/cli.ts';

const root = new URL('../../', import.meta.url);

const DOCS = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

const program = await buildProgram();
const commands = new Map<string, CommandUnknownOpts>(program.commands.map((c) => [c.name(), c]));
/** Flags every command takes: the program's own (commander reads them after the command too) and help. */
const PROGRAM_FLAGS = new Set(['--help', ...program.options.map((o) => o.long).filter((l): l is string => l !== undefined)]);

const longFlags = (command: CommandUnknownOpts): string[] => command.options.flatMap((o) => (o.long === undefined ? [] : [o.long]));

type Use = { doc: string; line: number; text: string; command: string; mention?: true };

/** Where a character offset of a text falls, as a 1-based line number. */
const lineAt = (text: string, offset: number): number => text.slice(0, offset).split('\n').length;

type Fence = { start: number; language: string; lines: string[] };

/** The fenced blocks of a Markdown text, with the line of each one's opening fence and its language. */
function fences(text: string): Fence[] {
  const blocks: Fence[] = [];
  let open: Fence | undefined;
  text.split('\n').forEach((line, i) => {
    const fence = /^\s*```(\S*)/.exec(line);
    if (fence) {
      if (open) blocks.push(open);
      open = open ? undefined : { start: i + 1, language: fence[1]!, lines: [] };
    } else open?.lines.push(line);
  });
  return blocks;
}

/**
 * One `backfill <command> ...` from where `backfill` starts to where the shell command ends: a
 * comment, `&&`, a pipe or redirection, or the quote that opened it (in printed output,
 * `'backfill cancel x'`).
 */
function commandAt(text: string, at: number): { command: string; text: string } | undefined {
  const m = /^backfill ([a-z][a-z-]*)/.exec(text.slice(at));
  if (!m || !commands.has(m[1]!)) return undefined;
  const quote = text[at - 1] === "'" ? "'" : undefined;
  const rest = text.slice(at);
  const end = quote !== undefined ? rest.indexOf(quote) : rest.search(/\s[#>|]|&&|[;`]|\)$/m);
  return { command: m[1]!, text: (end < 0 ? rest : rest.slice(0, end)).trim() };
}

/** Whether an offset of a shell line is inside a double-quoted string, as in `echo "... backfill retry-failed ..."`. */
const inString = (line: string, at: number): boolean => (line.slice(0, at).match(/"/g) ?? []).length % 2 === 1;

/** Every `backfill <command> ...` in a doc's fenced blocks and inline code; a mention is one in a comment or in prose. */
function usesIn(doc: string): Use[] {
  const text = readFileSync(new URL(doc, root), 'utf8');
  const uses: Use[] = [];
  for (const block of fences(text)) {
    block.lines.forEach((line, i) => {
      const comment = line.search(/(^|\s)#/);
      for (const m of line.matchAll(/(?<=^|[\s'(])backfill /g)) {
        const use = commandAt(line, m.index);
        if (use) uses.push({ doc, line: block.start + 1 + i, ...((comment >= 0 && m.index > comment) || inString(line, m.index) ? { mention: true } : {}), ...use });
      }
    });
  }
  // Inline code outside the fences: blank them out first, keeping the line numbers.
  const prose = text.replace(/^\s*```[\s\S]*?^\s*```/gm, (block) => block.replace(/[^\n]/g, ' '));
  // `backfill <command> ...`, or `<command> --flag ...` (as in `plan --estimate --sample`).
  for (const m of prose.matchAll(/`([^`]+)`/g)) {
    const span = m[1]!.replace(/\s+/g, ' ');
    const use = commandAt(span.startsWith('backfill ') ? span : /^[a-z-]+ \[?--/.test(span) ? `backfill ${span}` : '', 0);
    if (use) uses.push({ doc, line: lineAt(prose, m.index), mention: true, ...use });
  }
  return uses;
}

const USES = DOCS.flatMap(usesIn);

/** Lines of ```bash blocks that start a `backfill <word>` whose word is no command. */
const UNKNOWN = DOCS.flatMap((doc) =>
  fences(readFileSync(new URL(doc, root), 'utf8')).filter((block) => block.language === 'bash').flatMap((block) =>
    block.lines.flatMap((line, i) => {
      const m = /^\s*(?:\$ )?(?:[A-Z_]+=\S+ )*backfill ([a-z][\w-]*)/.exec(line);
      return m && !commands.has(m[1]!) ? [{ doc, line: block.start + 1 + i, text: line.trim(), word: m[1]! }] : [];
    }),
  ),
);

/** A table whose header's first cell is `flag`: the command is the one its doc's example just above runs. */
type FlagTable = { doc: string; line: number; command: string; rows: Array<{ line: number; flags: string[]; defaults: string }> };

function flagTables(doc: string): FlagTable[] {
  const lines = readFileSync(new URL(doc, root), 'utf8').split('\n');
  const tables: FlagTable[] = [];
  lines.forEach((line, i) => {
    if (!/^\| *flag *\|/.test(line)) return;
    const above = USES.filter((u) => u.doc === doc && u.line < i + 1).sort((a, b) => a.line - b.line).at(-1);
    expect(above, `${doc}:${i + 1}: a table of flags with no 'backfill <command>' example above it to say whose flags they are`).toBeDefined();
    const rows: FlagTable['rows'] = [];
    for (let j = i + 2; j < lines.length && lines[j]!.startsWith('|'); j++) {
      const [flagCell = '', defaults = ''] = lines[j]!.split(/(?<!\\)\|/).slice(1).map((c) => c.trim());
      rows.push({ line: j + 1, flags: [...flagCell.matchAll(/`(--[a-z0-9-]+)/g)].map((f) => f[1]!), defaults });
    }
    tables.push({ doc, line: i + 1, command: above!.command, rows });
  });
  return tables;
}

describe('the docs and the command line', () => {
  it('find the command lines of the docs', () => {
    expect(USES.length).toBeGreaterThan(100);
    for (const name of ['start', 'worker', 'policy', 'rollback', 'dev']) expect(USES.some((u) => u.command === name), name).toBe(true);
  });

  it('name only commands the program has', () => {
    const wrong = UNKNOWN.map((u) => `${u.doc}:${u.line}: \`${u.text}\`: backfill has no command ${u.word} (it has ${[...commands.keys()].join(', ')})`);
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it("use in each `backfill <command> ...` only that command's flags", () => {
    const wrong: string[] = [];
    for (const use of USES) {
      const known = new Set([...PROGRAM_FLAGS, ...longFlags(commands.get(use.command)!)]);
      for (const [, flag] of use.text.matchAll(/(?<=^|[\s[(])(--[a-z][a-z0-9-]*)/g)) {
        if (!known.has(flag!)) {
          wrong.push(
            `${use.doc}:${use.line}: \`${use.text}\`: ${use.command} has no ${flag} (it has ${longFlags(commands.get(use.command)!).join(', ')}); ` +
              `fix the doc, or add the option to the command (client/commands/)`,
          );
        }
      }
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it('give in a synopsis (a span of `[--flag]`s) every flag of its command', () => {
    const wrong: string[] = [];
    const synopses = USES.filter((u) => u.mention && (u.text.match(/\[--/g) ?? []).length >= 3);
    expect(synopses.map((u) => u.command)).toContain('policy');
    for (const use of synopses) {
      const missing = longFlags(commands.get(use.command)!).filter((flag) => !new RegExp(`${flag}(?![a-z-])`).test(use.text));
      if (missing.length > 0) wrong.push(`${use.doc}:${use.line}: \`${use.text}\` lacks ${missing.join(', ')}: add them (\`backfill ${use.command} --help\` lists its options)`);
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it('give command lines that parse, where they hold no placeholder', async () => {
    // A program whose actions do nothing: parsing checks the arguments, options and their values.
    const dry = (await buildProgram()).exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const command of dry.commands) command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined }).action(() => undefined);
    const wrong: string[] = [];
    for (const use of USES.filter((u) => !u.mention && !/[<[…]|\.\.\.|\$\(/.test(u.text))) {
      const words = [...use.text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
      try {
        await dry.parseAsync(['node', ...words]);
      } catch (error) {
        wrong.push(`${use.doc}:${use.line}: \`${use.text}\` does not parse: ${(error as Error).message}`);
      }
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it("list in a table of a command's flags every option it has and no other, with --help's defaults", () => {
    const tables = DOCS.flatMap(flagTables);
    expect(tables.map((t) => `${t.doc} ${t.command}`)).toContain('docs/deploying.md worker');
    const wrong: string[] = [];
    for (const table of tables) {
      const command = commands.get(table.command)!;
      const listed = table.rows.flatMap((r) => r.flags);
      const where = `${table.doc}:${table.line} (the table of \`backfill ${table.command}\`'s flags)`;
      for (const flag of longFlags(command).filter((f) => !listed.includes(f))) wrong.push(`${where}: ${flag} is missing: add a row for it (\`backfill ${table.command} --help\` says what it does)`);
      for (const row of table.rows) {
        for (const flag of row.flags.filter((f) => !longFlags(command).includes(f))) wrong.push(`${table.doc}:${row.line}: ${table.command} has no ${flag}: remove the row, or fix its spelling`);
      }
      for (const option of command.options) {
        const row = table.rows.find((r) => option.long !== undefined && r.flags.includes(option.long));
        if (row === undefined || option.negate) continue;
        // The default --help shows: commander's `(default: ...)`, or the one the description gives, as in `(default 200)`.
        const shown = option.defaultValue !== undefined ? (option.defaultValueDescription ?? String(option.defaultValue)) : /\(default:? ([^,;)]+)/.exec(option.description)?.[1];
        if (shown !== undefined && !row.defaults.includes(`\`${shown}\``)) {
          wrong.push(`${table.doc}:${row.line}: ${option.long}'s default is \`${shown}\` in --help; the table says ${row.defaults || 'nothing'}: make them agree`);
        }
      }
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it('name every environment variable the code reads, and read every BACKFILL_ variable they name', () => {
    const sources = (dirs: readonly string[]) =>
      dirs.flatMap((dir) =>
        readdirSync(new URL(`${dir}/`, root), { recursive: true, encoding: 'utf8' })
          .filter((f) => f.endsWith('.ts'))
          .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(new URL(`${dir}/${f}`, root), 'utf8') })),
      );
    const docs = DOCS.map((doc) => readFileSync(new URL(doc, root), 'utf8')).join('\n');
    // A variable is read as env.NAME, env['NAME'], value(env, 'NAME'), a flag's .env('NAME'), or by prefix (startsWith('NAME_')).
    const READ = /(?:env\.|env\[['"]|\(env, '|\.env\('|_ENV = '|startsWith\(')((?:BACKFILL|TEMPORAL|OTEL|OPENLINEAGE)_[A-Z0-9_]*)/g;
    const wrong: string[] = [];
    const read = new Set<string>();
    for (const { file, text } of sources(['client', 'workers', 'host', 'activities'])) {
      for (const [, name] of text.matchAll(READ)) {
        read.add(name!);
        // A prefix (TEMPORAL_GRPC_META_) is named as such; a whole name must appear as a word.
        const documented = name!.endsWith('_') ? docs.includes(name!) : new RegExp(`\\b${name!}\\b`).test(docs);
        if (!documented) wrong.push(`${file} reads $${name!}, which no doc names: say what it does where its neighbours are (docs/deploying.md, "Other variables workers read")`);
      }
    }
    expect(read.size, 'the variables the code reads').toBeGreaterThan(25);
    // The docs' own variables: read by the code, or by the scripts and tests they document.
    const named = new Set(sources(['client', 'workers', 'host', 'activities', 'core', 'scripts', 'test']).flatMap((s) => s.text.match(/\bBACKFILL_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []));
    for (const doc of DOCS) {
      const text = readFileSync(new URL(doc, root), 'utf8');
      for (const m of text.matchAll(/\bBACKFILL_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        if (!named.has(m[0])) wrong.push(`${doc}:${lineAt(text, m.index)}: $${m[0]} is read by no code: fix its name, or drop it`);
      }
    }
    expect([...new Set(wrong)], [...new Set(wrong)].join('\n')).toEqual([]);
  });
});
