/** What start and plan say about --only-changed and busy datasets, without a server. */
import { stripVTControlCharacters } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli as cli } from './run-cli.ts';
import { datasetsBusy, sampleBusy } from '../../client/dataset-writers.ts';
import type { ChangeSummary } from '../../client/only-changed.ts';
import { renderChanges } from '../../client/render.ts';
import { admissionLines, reportedStart } from '../../client/commands/start.ts';
import { workerCommand } from '../../client/worker-hint.ts';

const EXAMPLE = new URL('../../examples/shop/backfill.yaml', import.meta.url).pathname;

afterEach(() => vi.restoreAllMocks());

describe('--only-changed options', () => {
  it('refuses --warehouse and --code-version without --only-changed, naming the fix', async () => {
    const plan = await cli('plan', EXAMPLE, '--warehouse', 'w.db', '--json');
    expect(plan.code).toBe(1);
    expect(JSON.parse(plan.stdout).error).toEqual({ code: 'invalid_argument', message: '--warehouse only matters with --only-changed: add --only-changed, or leave it out', path: 'only-changed' });
    const start = await cli('start', EXAMPLE, '--warehouse', 'w.db', '--code-version', 'v2', '--json');
    expect(JSON.parse(start.stdout).error.message).toBe('--warehouse and --code-version only matter with --only-changed: add --only-changed, or leave them out');
  });

  it('refuses --stage with --canary before connecting (no server listens at this address), as it did only once a server answered', async () => {
    const start = await cli('start', EXAMPLE, '--stage', '--canary', '2', '--address', '127.0.0.1:1', '--json');
    expect(start.code).toBe(1);
    expect(JSON.parse(start.stdout).error).toMatchObject({ code: 'invalid_argument', path: 'canary', message: expect.stringMatching(/^--stage and a canary do not go together/) });
  });

  it('refuses a --wait-for-datasets that is not a duration', async () => {
    const start = await cli('start', EXAMPLE, '--wait-for-datasets', 'soon', '--json');
    expect(JSON.parse(start.stdout).error).toMatchObject({ code: 'invalid_argument', path: 'wait-for-datasets' });
  });

  it('renders how many partitions of each node run, and why', () => {
    const summary: ChangeSummary = {
      warehouse: 'w.db',
      codeVersion: 'backfill@1',
      compared: 'transform, params, code version, input versions',
      totalToRun: 12,
      totalSkipped: 30,
      nodes: [
        { id: 'a', partitions: 20, toRun: 2, skip: 18, reasons: { unpublished: 1, spec: 0, code: 0, inputs: 1, upstream: 0 } },
        { id: 'b', partitions: 22, toRun: 10, skip: 12, reasons: { unpublished: 0, spec: 8, code: 0, inputs: 0, upstream: 2 } },
      ],
    };
    const text = stripVTControlCharacters(renderChanges(summary));
    expect(text).toContain('only changed (against w.db, code version backfill@1): 12 partitions run, 30 keep their published versions');
    expect(text).toMatch(/│ a\s+│ 20\s+│ 2\s+│ 18\s+│ 1 never published\s+│/);
    expect(text).toMatch(/│\s+│\s+│\s+│\s+│ 1 upstream versions changed\s+│/);
    expect(text).toMatch(/│ b\s+│ 22\s+│ 10\s+│ 12\s+│ 8 spec changed\s+│/);
    expect(text).toContain('this ledger does not record the SQL or checks');
  });
});

describe('a --from/--to that holds no partition', () => {
  const message = (range: string) =>
    `--from/--to (${range}) holds no partition of any node: the spec's partitions run from 2024-01-01T00:00:00Z to 2025-01-01T00:00:00Z (exclusive); choose a range that overlaps them, or leave out --from and --to for all of them`;

  it('is refused by plan and start (before connecting: no server listens at this address)', async () => {
    const plan = await cli('plan', EXAMPLE, '--from', '2030-01-01', '--to', '2030-02-01', '--json');
    expect(plan.code).toBe(1);
    expect(JSON.parse(plan.stdout).error).toEqual({ code: 'invalid_date', message: message('2030-01-01T00:00:00Z to 2030-02-01T00:00:00Z'), path: 'from' });
    const start = await cli('start', EXAMPLE, '--to', '2023-06-01', '--address', '127.0.0.1:1', '--json');
    expect(start.code).toBe(1);
    expect(JSON.parse(start.stdout).error).toEqual({ code: 'invalid_date', message: message('the start to 2023-06-01T00:00:00Z'), path: 'to' });
  });

  it('is not refused when the range overlaps a node, even by one partition', async () => {
    const plan = await cli('plan', EXAMPLE, '--from', '2024-12-31', '--to', '2030-01-01', '--json');
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.stdout).totalPartitions).toBeGreaterThan(0);
  });
});

describe('datasetsBusy', () => {
  const writers = [
    { backfillId: 'first', datasets: ['orders', 'sessions'] },
    { backfillId: 'second', datasets: ['users'] },
  ];
  it('names every other backfill and its datasets, and the ways out', () => {
    const error = datasetsBusy('new', writers);
    expect(error.code).toBe('dataset_busy');
    expect(error.message).toBe(
      "backfill 'new' would write datasets that running backfills write (orders, sessions by backfill 'first'; users by backfill 'second'): one writer per dataset. " +
        "Wait for it to end ('backfill wait first'; a staged backfill or a canary ends only once published, approved or discarded: 'backfill status first' says which), " +
        "cancel it ('backfill cancel first'), or start with --wait-for-datasets to start once they are free",
    );
  });
  it("for plan --estimate --sample: names the writers and the ways out a plan has (no start's --wait-for-datasets)", () => {
    const error = sampleBusy(writers.slice(0, 1));
    expect(error.code).toBe('dataset_busy');
    expect(error.message).toBe(
      "the sample cannot run now: it is a staged backfill of datasets that running backfills write (orders, sessions by backfill 'first'), one writer per dataset. " +
        "Sample once they have ended ('backfill wait first'; a staged backfill or a canary ends only once published, approved or discarded: 'backfill status first' says which), " +
        'or estimate without --sample: from the ledger of earlier runs, or with --assume <duration>',
    );
  });
  it('for plan --estimate --sample: sends a terminated writer to a resume and a cancel, not to a wait that frees nothing', () => {
    const error = sampleBusy([{ backfillId: 'gone', datasets: ['orders'], ended: 'terminated' }, writers[1]!]);
    expect(error.message).toContain("Sample once they have ended ('backfill wait second';");
    expect(error.message).toContain("and once they are free (for 'gone', a termination (or a workflow timeout) skips its cleanup");
    expect(error.message).not.toContain("'backfill wait gone'");
  });
  it('says how long it waited when waiting gave up', () => {
    const error = datasetsBusy('new', writers.slice(0, 1), 90_000);
    expect(error.code).toBe('timeout');
    expect(error.message).toMatch(/and they were still busy after 90s: wait longer, or cancel 'first'$/);
  });
  it('sends a terminated writer, which neither a wait nor a cancel ends, to a resume and a cancel', () => {
    const error = datasetsBusy('new', [writers[1]!, { backfillId: 'gone', datasets: ['orders'], ended: 'terminated' }]);
    expect(error.message).toBe(
      "backfill 'new' would write datasets that running backfills write (users by backfill 'second'; orders by backfill 'gone' (it ended terminated)): one writer per dataset. " +
        "Wait for it to end ('backfill wait second'; a staged backfill or a canary ends only once published, approved or discarded: 'backfill status second' says which), cancel it ('backfill cancel second'), or start with --wait-for-datasets to start once they are free. " +
        "For 'gone', a termination (or a workflow timeout) skips its cleanup, so its datasets stay leased in its warehouse (and its node workflows run on for minutes): 'backfill resume gone' then 'backfill cancel gone' end it and free them " +
        '(the resumed run may finish a few partitions before the cancel reaches it)',
    );
    const waited = datasetsBusy('new', [{ backfillId: 'gone', datasets: ['orders'], ended: 'terminated' }], 90_000);
    expect(waited.message).toMatch(/still busy after 90s: for 'gone', a termination \(or a workflow timeout\) skips its cleanup.*'backfill resume gone' then 'backfill cancel gone'/);
    expect(waited.message).not.toMatch(/wait longer/);
  });
});

describe('what start reports of the policy', () => {
  const started = (policy: { hash: string | null; path: string | null } | null) => ({
    backfillId: 'b',
    workflowId: 'backfill-b',
    runId: 'r',
    uiUrl: 'http://ui',
    admission: { state: 'running' as const, policy, planHash: null, holds: [] },
  });

  it('names no policy where none judged the start (the workflow answers one with neither hash nor path), as text or JSON', () => {
    const none = started({ hash: null, path: null });
    expect(stripVTControlCharacters(admissionLines(none))).not.toContain('policy');
    expect(reportedStart(none).admission?.policy).toBeNull();
  });

  it('where no worker took the start, says that nothing runs until one does, and the worker command that runs the spec', () => {
    const untaken = { backfillId: 'b', workflowId: 'backfill-b', runId: 'r', uiUrl: 'http://ui', admission: null };
    const spec = { nodes: [{ taskQueue: 'backfill' }, { taskQueue: 'backfill' }] };
    const text = stripVTControlCharacters(admissionLines(untaken, workerCommand(spec, ['/work/p/transforms.ts', '/elsewhere/more.ts'], '/work/p'))).trim();
    expect(text).toBe("no worker has taken it yet: nothing runs until one polls its workflow task queue; start one with 'backfill worker --transforms ./transforms.ts /elsewhere/more.ts'");
    // A worker given --task-queue polls those queues only: the hint names every queue the nodes use.
    expect(workerCommand({ nodes: [{ taskQueue: 'backfill' }, { taskQueue: 'warehouse' }] }, [], '/work/p')).toBe('backfill worker --task-queue backfill warehouse');
    expect(workerCommand({ nodes: [{ taskQueue: 'warehouse' }] }, [], '/work/p')).toBe('backfill worker --task-queue warehouse');
  });

  it("names the policy's file and hash where one did", () => {
    const judged = started({ hash: 'sha256:0123456789abcdef0123', path: 'backfill.policy.yaml' });
    expect(stripVTControlCharacters(admissionLines(judged))).toBe('\n  policy: backfill.policy.yaml (sha256:0123456789ab…)');
    expect(reportedStart(judged)).toBe(judged);
  });
});
