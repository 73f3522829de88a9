/**
 * The rooms of the code, kept by a test instead of a comment (STYLE item 4): what each folder
 * may load, read from the value imports of the sources (import-graph.ts).
 *
 *   - Workflow code runs in Temporal's deterministic sandbox, bundled by webpack: nothing it
 *     reaches may be a Node built-in or @temporalio/worker. The packages it may reach are
 *     listed: @temporalio/workflow, @temporalio/common, and zod. zod is allowed deliberately:
 *     the limits an operator sets are parsed by one schema (core/limits.ts) wherever they
 *     arrive, the workflows' updates included; its parsing is pure and deterministic, and it
 *     costs the bundle size only.
 *   - core/ is pure: it imports only core/ (and zod), with no import cycles.
 *   - Nothing of the product imports scripts/ (development tools).
 *   - The command line loads no heavy package before it knows the command, and the
 *     transforms entry point loads none at all: both are what makes them start fast.
 */
import { describe, expect, it } from 'vitest';
import { cycles, importsOf, modulesUnder, packageOf, reachable } from './import-graph.ts';

const WORKFLOW_PACKAGES = ['@temporalio/common', '@temporalio/workflow', 'zod', '@noble/hashes'];
const PRODUCT = ['core', 'workflows', 'activities', 'workers', 'client', 'host', 'examples'];
const ENTRY_POINTS = ['index.ts', 'transforms.ts', 'warehouse.ts', 'warehouse-testkit.ts', 'workers/index.ts', 'client/main.ts'];

describe('workflows/', () => {
  const { packages } = reachable(modulesUnder('workflows'), { dynamic: true });

  it('reach no Node built-in and no @temporalio/worker', () => {
    const forbidden = [...packages].filter(([name]) => name.startsWith('node:') || name === '@temporalio/worker');
    expect(forbidden.map(([name, by]) => `${name} (imported by ${by})`)).toEqual([]);
  });

  it('reach only the packages allowed in the workflow bundle', () => {
    expect([...packages.keys()].filter((name) => !WORKFLOW_PACKAGES.includes(name))).toEqual([]);
    // zod is reached on purpose (see above), through the limits' schema.
    expect(packages.get('zod')).toBeDefined();
  });
});

describe('core/', () => {
  const core = modulesUnder('core');

  // zod parses where a message arrives; @noble/hashes is SHA-256 in plain JavaScript, for hashes workflow code computes (planHash).
  const CORE_PACKAGES = ['zod', '@noble/hashes'];

  it('imports only core/, zod and @noble/hashes', () => {
    const outside = core.flatMap((module) =>
      importsOf(module)
        .filter((i) => (i.module === undefined ? !CORE_PACKAGES.includes(packageOf(i.specifier) ?? '') : !i.module.startsWith('core/')))
        .map((i) => `${module} imports ${i.specifier}`),
    );
    expect(outside).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(cycles(core).map((cycle) => cycle.join(' → '))).toEqual([]);
  });
});

describe('scripts/', () => {
  it('is imported by nothing of the product', () => {
    const modules = [...PRODUCT.flatMap(modulesUnder), ...ENTRY_POINTS, 'bin/backfill.js', 'bin/typescript-loader.mjs'];
    const offending = modules.flatMap((module) =>
      importsOf(module)
        .filter((i) => i.module?.startsWith('scripts/'))
        .map((i) => `${module} imports ${i.specifier}`),
    );
    expect(offending).toEqual([]);
  });
});

describe('start-up', () => {
  const HEAVY = /^(@temporalio\/|@opentelemetry\/|zod$|yaml$|vega$|pg$|better-sqlite3$|cli-table3$|cli-progress$|tsx$|esbuild$)/;

  it('the command line loads no heavy package before it knows the command', () => {
    const { packages } = reachable(['client/main.ts']);
    expect([...packages].filter(([name]) => HEAVY.test(name)).map(([name, by]) => `${name} (imported by ${by})`)).toEqual([]);
  });

  it('the transforms entry point loads no package at all', () => {
    const { packages } = reachable(['transforms.ts']);
    expect([...packages.keys()].filter((name) => !name.startsWith('node:'))).toEqual([]);
  });

  it('every command is a module of its own, attached by the program', () => {
    const commands = modulesUnder('client/commands');
    const attached = importsOf('client/cli.ts').flatMap((i) => (i.module?.startsWith('client/commands/') ? [i.module] : []));
    expect(commands.filter((module) => !attached.includes(module))).toEqual([]);
  });
});
