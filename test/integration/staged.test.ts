/**
 * Staged backfills on a real server, with a worker in a process of its own, on both warehouses:
 * `start --stage` leaves every dataset as it was; `diff` counts what publishing would change (as
 * SQL EXCEPT counts it, by the nodes' key columns or whole rows), and so does the report;
 * `publish` moves everything at once (a reader polling the views meanwhile never sees a mix) and
 * leaves the datasets as a direct run leaves them; `discard` drops the staged versions; a
 * decision sent straight to the workflow, past the command line, is validated the same way, and
 * a signal of the same name does nothing. Rollback, lineage and `--only-changed` tell staged
 * versions from published ones: a rollback goes back to what was published before, never to a
 * staged or discarded version; lineage shows staged versions as staged; `--only-changed` counts
 * only published versions.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical.ts';
import { PARTITION_COLUMN, VERSION_COLUMN, quoteIdent, versionsTable } from '../../activities/warehouse/sql.ts';
import { stageLock } from '../../activities/warehouse/staging.ts';
import type { LedgerRow, Row, Warehouse } from '../../activities/warehouse/types.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { onlyChanged, type ChangeSummary } from '../../client/only-changed.ts';
import type { Report } from '../../client/report/model.ts';
import type { AuditEntry } from '../../core/audit.ts';
import type { DiffSummary, PartitionDiff } from '../../core/diff.ts';
import type { GovernanceView } from '../../core/governance.ts';
import type { Progress } from '../../core/protocol.ts';
import { expandPlan } from '../../core/plan.ts';
import type { RollbackSummary } from '../../core/rollback.ts';
import type { SpecInput } from '../../core/spec.ts';
import { withPostgres } from '../../scripts/postgres.ts';
import { sqliteRawAccess } from '../unit/sqlite-raw.ts';
import { backendFixture, type Backend } from './backend-fixture.ts';
import { runCli, scratch, testSpec, waitFor } from './helpers.ts';

/** Daily src (two rows a day, scaled by `factor`, keyed by k), daily totals of it (no key: whole rows), and weekly totals of those (keyed by week), over the first ten days of 2024. */
function specInput(queue: string, prefix: string, factor: number): SpecInput {
  return {
    name: `staged-${prefix}`,
    partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-11' },
    defaults: { taskQueue: queue, concurrency: 4, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
    nodes: [
      { id: `${prefix}_src`, sql: 'SELECT :partition AS day, 1 AS k, :factor AS v UNION ALL SELECT :partition, 2, :factor * 2', params: { factor }, key: ['k'] },
      { id: `${prefix}_daily`, dependsOn: [`${prefix}_src`], sql: `SELECT day, SUM(v) AS total, COUNT(*) AS n FROM ${prefix}_src GROUP BY day` },
      { id: `${prefix}_weekly`, partitions: { grain: 'week' }, dependsOn: [`${prefix}_daily`], sql: `SELECT :partition AS week, SUM(total) AS total, COUNT(*) AS days FROM ${prefix}_daily`, key: ['week'] },
    ],
  };
}

const nodesOf = (prefix: string) => [`${prefix}_src`, `${prefix}_daily`, `${prefix}_weekly`];

/** Each dataset's columns and key (null: whole rows), by the node's suffix, as specInput declares them. */
const SHAPES: Record<string, { columns: string[]; key: string[] | null }> = {
  src: { columns: ['day', 'k', 'v'], key: ['k'] },
  daily: { columns: ['day', 'total', 'n'], key: null },
  weekly: { columns: ['week', 'total', 'days'], key: ['week'] },
};
type Counts = { added: number; removed: number; changed: number };

/** Every dataset's rows, as its view shows them. */
async function views(warehouse: Warehouse, prefix: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const node of nodesOf(prefix)) out[node] = (await warehouse.query(`SELECT * FROM ${node}`)).map((row) => canonicalJson(row)).sort();
  return out;
}

describe.each<Backend>(['sqlite', 'postgres'])('staged backfills on %s', (kind) => {
  // The workers' OpenLineage events, one per line.
  const lineageFile = join(scratch(`staged-lineage-${kind}`), 'openlineage.jsonl');
  const fx = backendFixture(kind, 'staged', { OPENLINEAGE__TRANSPORT__TYPE: 'file', OPENLINEAGE__TRANSPORT__LOG_FILE_PATH: lineageFile, OPENLINEAGE__TRANSPORT__APPEND: 'true' });
  /** How each node run of `prefix` ended in OpenLineage after `since` (ms), and whether no earlier than `notBefore`. */
  const nodeRunEnds = (prefix: string, since: number, notBefore: number) => {
    const events = existsSync(lineageFile) ? readFileSync(lineageFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventType: string; eventTime: string; job: { name: string } }) : [];
    return events
      .filter((e) => e.job.name.startsWith(`staged-${prefix}.`) && e.eventType !== 'START' && Date.parse(e.eventTime) >= since)
      .map((e) => [e.job.name, e.eventType, Date.parse(e.eventTime) >= notBefore])
      .sort();
  };
  const { queue, dir, location } = fx;

  const direct = async (prefix: string, factor: number): Promise<string> => {
    const { backfillId } = await fx.client.start(testSpec(queue, specInput(queue, prefix, factor)), { taskQueue: queue, tuning: { reportIntervalMs: 200 }, id: `${prefix}-direct-${randomUUID().slice(0, 6)}` });
    expect((await fx.client.wait(backfillId, 120_000)).state).toBe('completed');
    return backfillId;
  };
  /** `backfill start --stage` from a spec file, until every partition is staged. */
  const staged = async (prefix: string, factor: number): Promise<string> => {
    const started = await runCli<{ backfillId: string }>(['start', specFile(prefix, factor), '--stage', '--id', `${prefix}-staged-${factor}`, '--json'], { BACKFILL_TASK_QUEUE: queue });
    expect(started.code, started.stderr).toBe(0);
    const id = started.json!.backfillId;
    await waitFor('every partition to be staged', async () => (await fx.client.progress(id)).state === 'staged', 120_000, 200);
    return id;
  };
  const cli = async <T>(...args: string[]) => {
    const result = await runCli<T>([...args, '--json'], { BACKFILL_WAREHOUSE: location });
    return { code: result.code, json: result.json!, stderr: result.stderr };
  };

  /** The spec file of `prefix` with `factor`, as `start` and `plan` read it. */
  const specFile = (prefix: string, factor: number): string => {
    const file = join(dir, `${prefix}-${factor}.json`);
    writeFileSync(file, JSON.stringify(specInput(queue, prefix, factor)));
    return file;
  };
  /** How many partitions `--only-changed` would run for the spec with `factor` (`plan --only-changed`, or in process what it calls). */
  const toRun = async (prefix: string, factor: number, via: 'cli' | 'process' = 'process'): Promise<number> => {
    if (via === 'process') return (await onlyChanged(expandPlan(testSpec(queue, specInput(queue, prefix, factor))), { warehouse: location })).summary.totalToRun;
    const plan = await cli<{ onlyChanged: ChangeSummary }>('plan', specFile(prefix, factor), '--only-changed');
    expect(plan.code, plan.stderr).toBe(0);
    return plan.json.onlyChanged.totalToRun;
  };
  /** Rows of a statement, behind the warehouse's back (the datasets' versions tables). */
  const rawRows = (sql: string): Promise<Row[]> => (kind === 'sqlite' ? sqliteRawAccess(location).rows(sql) : withPostgres(location, async (c) => (await c.query<Row>(sql)).rows));
  const versionsOf = (node: string) => `${kind === 'sqlite' ? 'main' : 'backfill'}.${quoteIdent(versionsTable(node))}`;
  /**
   * Per node, rows (or keys) added, removed and changed by the backfill's versions with `status`
   * against the partition's `against` version, as SQL EXCEPT counts them.
   */
  const exceptCounts = async (id: string, prefix: string, status: LedgerRow['status'], against: (row: LedgerRow) => Promise<number | null>): Promise<Record<string, Counts>> => {
    const out: Record<string, Counts> = {};
    for (const row of (await fx.warehouse.ledger({ backfillId: id })).filter((r) => r.status === status)) {
      const { columns, key } = SHAPES[row.node.slice(prefix.length + 1)]!;
      const was = (await against(row)) ?? -1;
      const version = (v: number, list: string[]) => `SELECT ${list.join(', ')} FROM ${versionsOf(row.node)} WHERE ${PARTITION_COLUMN} = '${row.partition}' AND ${VERSION_COLUMN} = ${v}`;
      const count = async (sql: string) => Number((await rawRows(`SELECT COUNT(*) AS n FROM (${sql}) x`))[0]!.n);
      const by = key ?? columns;
      const counts: Counts = {
        added: await count(`${version(row.version, by)} EXCEPT ${version(was, by)}`),
        removed: await count(`${version(was, by)} EXCEPT ${version(row.version, by)}`),
        // Keys in both versions, less the keys whose whole row is in both.
        changed: key ? await count(`${version(row.version, key)} INTERSECT ${version(was, key)} EXCEPT SELECT ${key.join(', ')} FROM (${version(row.version, columns)} INTERSECT ${version(was, columns)}) s`) : 0,
      };
      const sum = (out[row.node] ??= { added: 0, removed: 0, changed: 0 });
      sum.added += counts.added;
      sum.removed += counts.removed;
      sum.changed += counts.changed;
    }
    return out;
  };
  const countsOf = (summary: DiffSummary): Record<string, Counts> => Object.fromEntries(summary.nodes.map((n) => [n.node, { added: n.added, removed: n.removed, changed: n.changed }]));
  const currentVersion = async (row: LedgerRow) => (await fx.warehouse.ledger({ node: row.node, partition: row.partition })).find((r) => r.current)?.version ?? null;
  /** What `backfill lineage --json` prints (or, in process, the ledger rows it prints). */
  const lineage = async (node: string, partition: string, via: 'cli' | 'process' = 'process'): Promise<{ current: LedgerRow | null; versions: LedgerRow[] }> => {
    if (via === 'process') {
      const versions = await fx.warehouse.ledger({ node, partition });
      return { current: versions.find((v) => v.current) ?? null, versions };
    }
    const out = await cli<{ current: LedgerRow | null; versions: LedgerRow[] }>('lineage', node, partition);
    expect(out.code, out.stderr).toBe(0);
    return out.json;
  };
  /** What `backfill status` prints, as JSON and as text. */
  const status = async (id: string): Promise<{ json: Progress & { governance: GovernanceView }; text: string }> => {
    const [json, text] = await Promise.all([cli<Progress & { governance: GovernanceView }>('status', id), runCli(['status', id], { BACKFILL_WAREHOUSE: location })]);
    expect(json.code, json.stderr).toBe(0);
    expect(text.code, text.stderr).toBe(0);
    return { json: json.json, text: text.stdout };
  };
  const report = async (id: string): Promise<Report> => {
    const out = await runCli<Report>(['report', id, '--format', 'json', '--output', '-'], { BACKFILL_WAREHOUSE: location });
    expect(out.code, out.stderr).toBe(0);
    return out.json!;
  };

  it('stage changes nothing readers see; diff counts the change; publish moves it all at once, as a direct run would; rollback goes back to before it', async () => {
    const p = `s_${kind}`;
    const first = await direct(p, 1);
    const before = await views(fx.warehouse, p);
    const stagedAt = Date.now();
    const id = await staged(p, 2);
    expect(await views(fx.warehouse, p)).toEqual(before);
    const progress = await fx.client.progress(id);
    expect(progress).toMatchObject({ state: 'staged', done: progress.total, failed: 0 });

    // diff: each day of src has both rows changed: by its key k, 2 changed (not 2 removed and 2 added); daily by whole rows,
    // one removed and one added a day; weekly by its key, one changed row per week (2 weeks).
    const diff = await cli<DiffSummary & { phase: string }>('diff', id);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json.phase).toBe('awaiting');
    expect(diff.json.nodes.map((n) => [n.node, n.key, n.partitions, n.added, n.removed, n.changed, n.rowsBefore, n.rowsAfter])).toEqual([
      [`${p}_daily`, null, 10, 10, 10, 0, 10, 10],
      [`${p}_src`, ['k'], 10, 0, 0, 20, 20, 20],
      [`${p}_weekly`, ['week'], 2, 0, 0, 2, 2, 2],
    ]);
    expect(diff.json.nodes.find((n) => n.node === `${p}_src`)!.columns.find((c) => c.column === 'v')).toEqual({ column: 'v', before: { sum: 30, min: 1, max: 2 }, after: { sum: 60, min: 2, max: 4 } });
    // src's key k holds numbers, and is no measure: it is what rows are compared by, not a numeric column.
    expect(diff.json.nodes.map((n) => [n.node, n.columns.map((c) => c.column)])).toEqual([
      [`${p}_daily`, ['n', 'total']],
      [`${p}_src`, ['v']],
      [`${p}_weekly`, ['days', 'total']],
    ]);
    // The same counts as SQL EXCEPT gives over the versions tables, each staged version against the published one.
    expect(countsOf(diff.json)).toEqual(await exceptCounts(id, p, 'staged', currentVersion));
    // Per partition: every staged partition, adding up to the totals; the table lists those that changed.
    const each = await cli<{ partitionDiffs: PartitionDiff[] }>('diff', id, '--partitions');
    expect(each.json.partitionDiffs).toHaveLength(22);
    expect(each.json.partitionDiffs.filter((d) => d.node === `${p}_src`).reduce((sum, d) => sum + d.changed, 0)).toBe(20);
    expect(each.json.partitionDiffs.find((d) => d.node === `${p}_src` && d.partition === '2024-01-03')).toMatchObject({ rowsBefore: 2, rowsAfter: 2, added: 0, removed: 0, changed: 2, publishedVersion: 1, stagedVersion: 2 });
    const eachText = await runCli(['diff', id, '--partitions'], { BACKFILL_WAREHOUSE: location });
    expect(eachText.stdout).toMatch(/partitions whose rows changed: 22 of 22/);
    // The report says the same, as what publishing would change.
    const stagedReport = await report(id);
    expect(stagedReport.staged?.phase).toBe('staged');
    expect(stagedReport.staged?.summary.nodes).toEqual(diff.json.nodes);

    // Staged versions are staged, and not published, to lineage, --only-changed and rollback.
    const lineageStaged = await lineage(`${p}_src`, '2024-01-01', 'cli');
    expect(lineageStaged.current).toMatchObject({ backfillId: first, version: 1, status: 'published' });
    expect(lineageStaged.versions.map((v) => [v.version, v.backfillId, v.status, v.staged, v.current])).toEqual([
      [2, id, 'staged', true, false],
      [1, first, 'published', false, true],
    ]);
    const text = await runCli(['lineage', `${p}_src`, '2024-01-01'], { BACKFILL_WAREHOUSE: location });
    expect(text.stdout).toMatch(/│ 2\s+│ staged\s+│/);
    expect(await toRun(p, 1)).toBe(0);
    expect(await toRun(p, 2, 'cli')).toBe(22);
    const early = await cli<{ error: { code: string } }>('rollback', id);
    expect(early.json.error.code).toBe('still_running');

    // Past the command line: a signal named publish does nothing, and an update is validated where it arrives.
    const handle = fx.client.client.workflow.getHandle(`backfill/${id}`);
    await handle.signal('publish', { by: 'mallory' });
    const refused = await handle.executeUpdate('publish', { args: [{ by: 'mallory', extra: 'x' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/unknown field extra/);
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect((await fx.client.progress(id)).state).toBe('staged');

    // A reader polling the views during publish sees the old totals or the new ones, never a mix.
    // One statement: one snapshot of both datasets.
    const totals = async () => {
      const [row] = await fx.warehouse.query(`SELECT (SELECT SUM(v) FROM ${p}_src) AS src, (SELECT SUM(total) FROM ${p}_daily) AS daily`);
      return `${Number(row!.src)}/${Number(row!.daily)}`;
    };
    const seen = new Set<string>();
    let publishing = true;
    const reader = (async () => {
      while (publishing) {
        seen.add(await totals());
        // An inline SQLite warehouse answers in microtasks: let the command line's exit be heard.
        await new Promise((r) => setImmediate(r));
      }
    })();
    const publishAt = Date.now();
    const published = await cli<{ versions: number; by: string; reason: string | null }>('publish', id, '--reason', 'diff reviewed');
    publishing = false;
    await reader;
    expect(published.code, published.stderr).toBe(0);
    expect(published.json).toMatchObject({ versions: 22, reason: 'diff reviewed' });
    expect([...seen].filter((t) => t !== '30/30' && t !== '60/60'), `totals seen: ${[...seen].join(', ')}`).toEqual([]);
    expect(await totals()).toBe('60/60');
    expect((await fx.client.wait(id, 60_000)).state).toBe('completed');
    // OpenLineage: each node run completes with the publish, not when its partitions were staged.
    expect(nodeRunEnds(p, stagedAt, publishAt)).toEqual(nodesOf(p).map((n) => [`staged-${p}.${n}`, 'COMPLETE', true]).sort());

    // Published, it is an ordinary backfill: publishing again is refused, saying the decision was taken.
    const again = await cli<{ error: { code: string; message: string } }>('publish', id);
    expect(again.json.error).toMatchObject({ code: 'already_decided', message: expect.stringMatching(new RegExp(`^backfill '${id}': the staged versions were published already \\(by .+\\); nothing is left to decide$`)) });
    const discardAfter = await cli<{ error: { code: string; message: string } }>('discard', id);
    expect(discardAfter.json.error).toMatchObject({ code: 'already_decided', message: expect.stringMatching(/published already \(by .+\): to undo the publish, backfill rollback /) });
    // diff no longer says a bare "nothing staged": it says the versions were published, when and by whom, and what shows the change.
    const diffAfter = await cli<{ phase: string; partitions: number; decided: { by: string; at: number } }>('diff', id);
    expect(diffAfter.code, diffAfter.stderr).toBe(0);
    expect(diffAfter.json).toMatchObject({ phase: 'published', partitions: 0, decided: { by: expect.any(String), at: expect.any(Number) } });
    expect(diffAfter.json.decided.at).toBeGreaterThanOrEqual(publishAt);
    expect(diffAfter.json.decided.by).toBe(published.json.by);
    const diffAfterText = await runCli(['diff', id], { BACKFILL_WAREHOUSE: location });
    expect(diffAfterText.code, diffAfterText.stderr).toBe(0);
    expect(diffAfterText.stdout).toContain(
      `nothing is staged now: the staged versions were published at ${new Date(diffAfter.json.decided.at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} by ${published.json.by}, and readers see them. 'backfill report ${id}' shows what the publish changed; 'backfill rollback ${id}' undoes it`,
    );
    expect(diffAfterText.stdout).not.toMatch(/nothing staged: published or discarded/);
    const after = await views(fx.warehouse, p);
    expect((await fx.warehouse.ledger({ backfillId: id })).every((r) => r.status === 'published' && r.staged === true)).toBe(true);
    // The report now says what the publish changed: the diff that was staged, against the versions it replaced.
    const publishedReport = await report(id);
    expect(publishedReport.staged?.phase).toBe('published');
    expect(countsOf(publishedReport.staged!.summary)).toEqual(countsOf(diff.json));
    expect(countsOf(publishedReport.staged!.summary)).toEqual(await exceptCounts(id, p, 'published', async (row) => row.previousVersion));
    expect((await lineage(`${p}_src`, '2024-01-01')).current).toMatchObject({ backfillId: id, version: 2, status: 'published', staged: true, previousVersion: 1 });
    expect(await toRun(p, 2)).toBe(0);
    expect(await toRun(p, 1)).toBe(22);

    // Rollback goes back to the versions published before it, checksum for checksum.
    const rolled = await cli<RollbackSummary>('rollback', id);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.json).toMatchObject({ restored: 22, leftAlone: 0 });
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect((await lineage(`${p}_src`, '2024-01-01')).current).toMatchObject({ backfillId: first, version: 1 });
    expect(await toRun(p, 1)).toBe(0);

    // A direct run of the staged spec gives what the publish gave.
    await direct(p, 2);
    expect(await views(fx.warehouse, p)).toEqual(after);
    // A dozen command-line runs, each a process of its own: more than the default time on a busy machine.
  }, 360_000);

  it('a staged backfill cancelled before its decision: its versions stay unpublished, and are no rollback target of a later backfill', async () => {
    const p = `c_${kind}`;
    const first = await direct(p, 1);
    const before = await views(fx.warehouse, p);
    const id = await staged(p, 2);
    await fx.client.cancel(id);
    expect((await fx.client.wait(id, 60_000)).state).toBe('cancelled');
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect(new Set((await fx.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['staged']));
    expect(await toRun(p, 2)).toBe(22);
    // The datasets are free: a later backfill publishes over the published versions, not over the staged ones.
    const later = await direct(p, 3);
    const seen = await lineage(`${p}_src`, '2024-01-01');
    expect(seen.versions.map((v) => [v.version, v.backfillId, v.status, v.previousVersion, v.current])).toEqual([
      [3, later, 'published', 1, true],
      [2, id, 'staged', expect.anything(), false],
      [1, first, 'published', null, false],
    ]);
    const rolled = await cli<RollbackSummary>('rollback', later);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect((await lineage(`${p}_src`, '2024-01-01')).current).toMatchObject({ backfillId: first, version: 1 });
  });

  it('a staged backfill cancelled before its decision: discard drops what it staged, in a workflow of its own that a running backfill refuses', async () => {
    const p = `x_${kind}`;
    await direct(p, 1);
    const before = await views(fx.warehouse, p);
    const id = await staged(p, 4);
    const { runKey } = await fx.client.stagedRun(id);
    // Started straight through Temporal, past the command line, while the backfill holds its datasets: refused, nothing dropped.
    const early = fx.client.client.workflow.start('discardEndedWorkflow', { workflowId: `${id}-early-discard`, taskQueue: queue, args: [{ backfillId: id, runKey, taskQueue: queue }] });
    const failure = await (await early).result().then(() => null, (error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    let why: unknown = failure;
    while (why instanceof Error && why.cause instanceof Error) why = why.cause;
    expect((why as Error).message).toMatch(/still leases dataset .*nothing was dropped/);
    expect(new Set((await fx.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['staged']));
    // Waiting for its decision, it published nothing: a rollback is refused naming discard (it said to cancel or wait, which left its versions or waited for ever).
    const rollback = await cli<{ error: { code: string; message: string } }>('rollback', id);
    expect(rollback.json.error).toMatchObject({ code: 'still_running', message: expect.stringContaining(`is staged and waits for its decision: nothing of it is published, so there is nothing to roll back. Drop what it staged with 'backfill discard ${id}'`) });

    await fx.client.cancel(id);
    expect((await fx.client.wait(id, 60_000)).state).toBe('cancelled');
    // A publish of it names how to go on (it said only that it was not running).
    const publish = await cli<{ error: { code: string; message: string } }>('publish', id);
    expect(publish.json.error).toMatchObject({ code: 'not_running', message: `backfill '${id}' ended cancelled before its decision: go on with 'backfill resume ${id}', then publish it; or drop what it staged with 'backfill discard ${id}'` });
    // diff says it ended before its decision, not that it still computes or waits.
    expect(await fx.client.stagedRun(id)).toMatchObject({ end: { state: 'cancelled', discarded: false } });
    // status says what it staged stays, and how to drop it; its last action is the cancel.
    const cancelled = await status(id);
    expect(cancelled.json).toMatchObject({ state: 'cancelled', staged: { phase: 'awaiting' }, governance: { lastAction: { action: 'cancel' } } });
    expect(cancelled.text).toContain(`staged: it ended before its decision, so nothing of it is published; what it staged stays until 'backfill discard ${id}' drops it`);
    // A new run could not reach what this one staged: start --rerun is refused until it is decided, and starts nothing.
    const rerun = ['start', specFile(p, 4), '--stage', '--id', id, '--rerun', '--json'];
    const refused = await runCli<{ error: { code: string; message: string } }>(rerun, { BACKFILL_TASK_QUEUE: queue });
    expect(refused.code).not.toBe(0);
    expect(refused.json!.error).toMatchObject({ code: 'staged_undecided', message: expect.stringContaining(`backfill discard ${id}`) });
    expect((await fx.client.describe(id)).status.name).toBe('CANCELLED');
    const discarded = await cli<{ versions: number; before: number; action: string }>('discard', id, '--reason', 'left by a cancel');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect(discarded.json).toMatchObject({ versions: 22, before: 0, action: 'discard' });
    expect(new Set((await fx.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['discarded']));
    expect(await views(fx.warehouse, p)).toEqual(before);
    // status shows the discard (its workflow's audit entry) as the last action, and what it staged discarded: not the cancel, not waiting.
    const dropped = await status(id);
    expect(dropped.json).toMatchObject({
      state: 'cancelled',
      staged: { phase: 'discarded', by: expect.any(String), at: expect.any(Number) },
      governance: { lastAction: { action: 'discard', reason: 'left by a cancel', outcome: 'applied' }, actions: cancelled.json.governance.actions + 1 },
    });
    expect(dropped.text).toMatch(/last action: discard by .+ at .+: "left by a cancel"/);
    expect(dropped.text).toMatch(/staged: discarded after it ended \(by .+ at .+\): nothing of it was published/);
    expect(dropped.text).not.toContain('ended before its decision');
    // Idempotent: a second discard finds what the first dropped.
    const again = await cli<{ versions: number; before: number }>('discard', id);
    expect(again.json).toMatchObject({ versions: 0, before: 22 });
    expect(await fx.client.stagedRun(id)).toMatchObject({ end: { state: 'cancelled', discarded: true } });
    // Its versions are gone: resume would count their partitions done and write nothing.
    const resumed = await cli<{ error: { code: string; message: string } }>('resume', id);
    expect(resumed.code).not.toBe(0);
    expect(resumed.json.error.message).toMatch(/was discarded: .* --rerun/);
    // The audit trail says who dropped them and why.
    const audit = await cli<{ entries: Array<AuditEntry & { workflowId: string; runId: string }> }>('audit', id);
    expect(audit.code, audit.stderr).toBe(0);
    // The discard workflow's entries go on the backfill's numbering, not from 1 again.
    expect(audit.json.entries.map((e) => e.seq)).toEqual(audit.json.entries.map((_, i) => i + 1));
    expect(audit.json.entries.filter((e) => e.action === 'discard')).toEqual([
      expect.objectContaining({ reason: 'left by a cancel', outcome: 'applied', workflowId: `backfill/${id}/discard` }),
      expect.objectContaining({ reason: null, outcome: 'applied', workflowId: `backfill/${id}/discard` }),
    ]);
    // status's last actions are audit's newest entries, numbered alike.
    const last = (await status(id)).json.governance;
    const newest = audit.json.entries.slice(-2).map(({ workflowId: _w, runId: _r, ...entry }) => entry);
    expect(last.recentActions.slice(-2)).toEqual(newest);
    expect(last).toMatchObject({ lastAction: newest[1], actions: audit.json.entries.length });
    // Discarded: the new run starts.
    const again2 = await runCli<{ backfillId: string }>(rerun, { BACKFILL_TASK_QUEUE: queue });
    expect(again2.code, again2.stderr).toBe(0);
    await waitFor('the new run to be staged', async () => (await fx.client.progress(id)).state === 'staged', 120_000, 200);
    expect((await cli<{ versions: number }>('discard', id)).json).toMatchObject({ versions: 22 });
  }, 300_000);

  it('published with a failure, then retry-failed with the fix: the retried partitions are staged, wait for a publish of their own, and are published by it', async () => {
    const p = `r_${kind}`;
    // The source of 2024-01-02 fails a blocking check: it, its daily total and the first week's total are not staged.
    const bugged = specInput(queue, p, 1);
    bugged.nodes[0] = { ...bugged.nodes[0]!, checks: [{ type: 'sql', name: 'not_jan_2', sql: "SELECT * FROM {{this}} WHERE day = '2024-01-02'" }] };
    const buggedFile = join(dir, `${p}-bugged.json`);
    writeFileSync(buggedFile, JSON.stringify(bugged));
    // Watched until staged, it exits 2: a script's `start --stage --watch && backfill publish` would publish it without them.
    const started = await runCli(['start', buggedFile, '--stage', '--watch', '--id', `${p}-staged`], { BACKFILL_TASK_QUEUE: queue });
    expect(started.code, started.stderr + started.stdout).toBe(EXIT.failures);
    const id = `${p}-staged`;
    expect((await fx.client.progress(id)).state).toBe('staged');
    // Without --partial the publish is refused (the datasets would disagree), and nothing is published.
    const partial = await cli<{ error: { code: string; message: string } }>('publish', id, '--reason', 'all but one day');
    expect(partial.json.error).toMatchObject({ code: 'invalid_argument' });
    expect(partial.json.error.message).toMatch(/^nothing was published: 3 partitions are not staged .*--partial/);
    expect((await fx.client.progress(id)).state).toBe('staged');
    expect((await cli('publish', id, '--reason', 'all but one day', '--partial')).code).toBe(0);
    expect((await fx.client.wait(id, 60_000)).state).toBe('completed_with_failures');
    const afterFirst = await views(fx.warehouse, p);
    expect(afterFirst[`${p}_daily`]).toHaveLength(9);

    // The fix: the same spec without the check. The retried run stages, and says so before anyone may publish.
    const retried = await cli<{ resumed: unknown }>('retry-failed', id, '--spec', specFile(p, 1));
    expect(retried.code, retried.stderr).toBe(0);
    await waitFor('the retried partitions to be staged', async () => (await fx.client.progress(id)).state === 'staged', 120_000, 200);
    expect(await views(fx.warehouse, p)).toEqual(afterFirst);
    const stagedNow = (await fx.warehouse.ledger({ backfillId: id })).filter((r) => r.status === 'staged').map((r) => `${r.node}/${r.partition}`).sort();
    expect(stagedNow).toEqual([`${p}_daily/2024-01-02`, `${p}_src/2024-01-02`, `${p}_weekly/2024-W01`]);

    expect((await cli('publish', id, '--reason', 'the fixed day')).code).toBe(0);
    expect((await fx.client.wait(id, 60_000)).state).toBe('completed');
    expect(new Set((await fx.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['published', 'failed_check']));
    const all = await views(fx.warehouse, p);
    expect(all[`${p}_src`]).toHaveLength(20);
    expect(all[`${p}_daily`]).toHaveLength(10);
    expect(all[`${p}_weekly`]!.map((row) => JSON.parse(row) as { days: number }).map((row) => row.days).sort()).toEqual([3, 7]);
  }, 300_000);

  it('discard drops the staged versions and publishes nothing; the backfill ends discarded', async () => {
    const p = `d_${kind}`;
    await direct(p, 1);
    const before = await views(fx.warehouse, p);
    const stagedAt = Date.now();
    const id = await staged(p, 3);
    const early = await cli<{ error: { code: string } }>('publish', `${p}-nobody`);
    expect(early.json.error.code).toBe('not_found');
    const discarded = await cli<{ versions: number }>('discard', id, '--reason', 'wrong factor');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect(discarded.json.versions).toBe(22);
    expect((await fx.client.wait(id, 60_000)).state).toBe('discarded');
    // OpenLineage: its node runs were aborted, never completed.
    expect(nodeRunEnds(p, stagedAt, stagedAt)).toEqual(nodesOf(p).map((n) => [`staged-${p}.${n}`, 'ABORT', true]).sort());
    const aborts = readFileSync(lineageFile, 'utf8').split('\n').filter((l) => l.includes(`"staged-${p}.`) && l.includes('"ABORT"'));
    expect(aborts).toHaveLength(nodesOf(p).length);
    for (const line of aborts) expect(line).toContain('discarded: the staged versions were dropped');
    expect(await views(fx.warehouse, p)).toEqual(before);
    expect(new Set((await fx.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['discarded']));
    expect((await lineage(`${p}_src`, '2024-01-02')).versions.map((v) => [v.backfillId, v.status, v.current])).toEqual([
      [id, 'discarded', false],
      [expect.stringContaining(`${p}-direct`), 'published', true],
    ]);
    const discardedReport = await report(id);
    expect(discardedReport.staged).toMatchObject({ phase: 'discarded', summary: { partitions: 0 } });
    // Its versions are gone: resume would count their partitions done and write nothing.
    const resumed = await cli<{ error: { code: string; message: string } }>('resume', id);
    expect(resumed.code).not.toBe(0);
    expect(resumed.json.error).toMatchObject({ code: 'not_running', message: expect.stringMatching(/was discarded: .* --rerun/) });
    // A decision names the one taken, not its workflow's status on the server (completed).
    const published = await cli<{ error: { code: string; message: string } }>('publish', id);
    expect(published.json.error).toMatchObject({ code: 'already_decided', message: expect.stringMatching(new RegExp(`^backfill '${id}': the staged versions were discarded already \\(by .+\\); nothing is left to decide$`)) });
    // The datasets are free again: start --only-changed runs everything the discarded versions would have changed, and publishes.
    const started = await runCli<{ backfillId: string; onlyChanged: ChangeSummary }>(['start', specFile(p, 3), '--only-changed', '--id', `${p}-again`, '--json'], { BACKFILL_TASK_QUEUE: queue, BACKFILL_WAREHOUSE: location });
    expect(started.code, started.stderr).toBe(0);
    expect(started.json!.onlyChanged).toMatchObject({ totalToRun: 22, totalSkipped: 0 });
    expect((await fx.client.wait(started.json!.backfillId, 120_000)).state).toBe('completed');
    expect(await views(fx.warehouse, p)).not.toEqual(before);
    // Its rollback goes back to the published versions before it, not to the discarded ones.
    const rolled = await cli<RollbackSummary>('rollback', started.json!.backfillId);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(await views(fx.warehouse, p)).toEqual(before);
  }, 300_000);

  /**
   * Holds the lock a publish of `runKey` takes (as a big transaction would), until the returned
   * function lets it go: the publish waits on it.
   */
  const holdPublish = async (runKey: string): Promise<() => Promise<void>> => {
    if (kind === 'sqlite') {
      const db = new Database(location);
      db.exec('BEGIN IMMEDIATE');
      return async () => {
        db.exec('COMMIT');
        db.close();
      };
    }
    let letGo!: () => void;
    const released = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    let held!: () => void;
    const holding = new Promise<void>((resolve) => {
      held = resolve;
    });
    const session = withPostgres(location, async (c) => {
      await c.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [stageLock(runKey)]);
      held();
      await released;
    });
    await Promise.race([holding, session]);
    return async () => {
      letGo();
      await session;
    };
  };

  it('a cancel while the publish is under way waits for it: the backfill ends published, says so, and frees its datasets after', async () => {
    const p = `k_${kind}`;
    const id = await staged(p, 2);
    const stagedAt = Date.now();
    const handle = fx.client.client.workflow.getHandle(`backfill/${id}`);
    const letGo = await holdPublish((await fx.client.stagedRun(id)).runKey);
    const publishing = fx.client.decideStaged(id, 'publish', 'diff reviewed');
    await waitFor('the publish to be under way on the worker', async () =>
      ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'publishStaged' && a.state === proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED),
    );
    await fx.client.cancel(id, { reason: 'changed my mind' });
    // The cancel waits for the publish (and keeps the datasets leased meanwhile).
    await new Promise((r) => setTimeout(r, 2000));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await letGo();
    expect(await publishing).toMatchObject({ action: 'publish', versions: 22, by: expect.any(String), reason: 'diff reviewed' });
    const result = await fx.client.wait(id, 60_000);
    expect(result.state).toBe('completed');
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    expect(new Set((await fx.warehouse.ledger({ backfillId: id })).map((r) => r.status))).toEqual(new Set(['published']));
    expect((await views(fx.warehouse, p))[`${p}_src`]).toHaveLength(20);
    // The trail and the result say that the cancel came too late; lineage completed the node runs.
    const cancel = (await fx.client.audit(id)).find((e) => e.action === 'cancel');
    expect(cancel).toMatchObject({ outcome: 'refused', reason: 'changed my mind', details: { why: 'the staged versions were published before the cancel took effect' } });
    expect((await fx.client.result(id)).progress.governance?.lastAction).toMatchObject({ action: 'cancel', outcome: 'refused' });
    await waitFor('the node runs to end in lineage', () => nodeRunEnds(p, stagedAt, stagedAt).length === nodesOf(p).length);
    expect(nodeRunEnds(p, stagedAt, stagedAt)).toEqual(nodesOf(p).map((n) => [`staged-${p}.${n}`, 'COMPLETE', true]).sort());
    // Its leases were released once it ended: another backfill writes the datasets.
    await direct(p, 3);
  }, 300_000);

  it('a new spec while staging: diff and the report compare by its key columns; once staged, resume --spec is refused at once, naming the fix', async () => {
    const p = `kk_${kind}`;
    // Two rows a day keyed by k, with no key declared; the staged run is held back by a rate of one
    // partition every 50 s, so that the new spec arrives while it computes: its 3 days cannot all be
    // staged before 100 s have passed (at 0.25/s, 8 s, which a loaded machine's two command lines
    // could use up, and the staged backfill then refused the new spec). The new spec, with the key,
    // has no rate: the rest is staged at once.
    const keyed = (factor: number, key: boolean): SpecInput => ({
      name: `staged-${p}`,
      partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
      defaults: { taskQueue: queue, concurrency: 4, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
      nodes: [{ id: `${p}_src`, sql: 'SELECT :partition AS day, 1 AS k, :factor AS v UNION ALL SELECT :partition, 2, :factor * 2', params: { factor }, ...(factor > 1 && !key ? { rate: 0.02 } : {}), ...(key ? { key: ['k'] } : {}) }],
    });
    const fileOf = (factor: number, key: boolean) => {
      const file = join(dir, `${p}-${factor}-${key ? 'key' : 'rows'}.json`);
      writeFileSync(file, JSON.stringify(keyed(factor, key)));
      return file;
    };
    const { backfillId: first } = await fx.client.start(testSpec(queue, keyed(1, false)), { taskQueue: queue, tuning: { reportIntervalMs: 200 }, id: `${p}-direct-${randomUUID().slice(0, 6)}` });
    expect((await fx.client.wait(first, 120_000)).state).toBe('completed');
    const started = await runCli<{ backfillId: string }>(['start', fileOf(2, false), '--stage', '--id', `${p}-staged-${randomUUID().slice(0, 6)}`, '--json'], { BACKFILL_TASK_QUEUE: queue });
    expect(started.code, started.stderr).toBe(0);
    const id = started.json!.backfillId;
    const resumed = await runCli(['resume', id, '--spec', fileOf(2, true), '--json'], { BACKFILL_WAREHOUSE: location, BACKFILL_TASK_QUEUE: queue }, { timeoutMs: 60_000 });
    // Applied while it computed (once staged it would be refused, as below).
    expect(resumed.code, resumed.stderr).toBe(0);
    await waitFor('every partition to be staged', async () => (await fx.client.progress(id)).state === 'staged', 120_000, 200);

    // Compared by k, the key the spec it runs with now declares: 6 rows changed, none added or removed (by whole rows: 6 and 6).
    const diff = await cli<DiffSummary>('diff', id);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json.nodes.map((n) => [n.node, n.key, n.added, n.removed, n.changed])).toEqual([[`${p}_src`, ['k'], 0, 0, 6]]);
    expect((await report(id)).staged?.summary.nodes.map((n) => [n.key, n.added, n.removed, n.changed])).toEqual([[['k'], 0, 0, 6]]);

    // Staged, it waits for a decision that no new spec brings: refused at once, with the fix.
    const askedAt = Date.now();
    const again = await runCli<{ error: { code: string; message: string } }>(['resume', id, '--spec', fileOf(3, true), '--json'], { BACKFILL_WAREHOUSE: location, BACKFILL_TASK_QUEUE: queue }, { timeoutMs: 60_000 });
    expect(again.code).not.toBe(0);
    expect(Date.now() - askedAt).toBeLessThan(30_000);
    expect(again.json!.error.code).toBe('finishing');
    expect(again.json!.error.message).toMatch(/waits for publish or discard: .*publish it \(backfill publish .*\), or discard it \(backfill discard .*\) and then stage the fix as a new run: .*--rerun --stage/);
    const retried = await runCli<{ error: { code: string; message: string } }>(['retry-failed', id, '--json'], { BACKFILL_WAREHOUSE: location }, { timeoutMs: 60_000 });
    expect(retried.json!.error).toMatchObject({ code: 'finishing', message: expect.stringMatching(/waits for publish or discard/) });
    expect((await fx.client.progress(id)).state).toBe('staged');
    const discarded = await cli<{ versions: number }>('discard', id, '--reason', 'keys checked');
    expect(discarded.code, discarded.stderr).toBe(0);
    expect((await fx.client.wait(id, 60_000)).state).toBe('discarded');
  }, 300_000);

  it('a backfill that was not staged refuses diff with a clear error', async () => {
    const p = `n_${kind}`;
    const id = await direct(p, 1);
    const diff = await cli<{ error: { code: string; message: string } }>('diff', id);
    expect(diff.code).not.toBe(0);
    expect(diff.json.error).toMatchObject({ code: 'not_staged' });
    expect(diff.json.error.message).toMatch(/was not started with --stage/);
  });

  // Only PostgreSQL has roles; a SQLite file's reader is tested in existing-warehouse.test.
  if (kind === 'postgres') {
    // docs/deploying.md, "A reader's database role": an auditor's role creates nothing, not even a temporary table.
    it('a role that may only connect and SELECT the ledger runs diff, lineage, report and rollback --dry-run', async () => {
      const p = `ro_${kind}`;
      const first = await direct(p, 1);
      const id = await staged(p, 2);
      const reader = `bf_reader_${randomUUID().slice(0, 8)}`;
      const database = new URL(location).pathname.slice(1);
      await withPostgres(location, (c) =>
        c.query(
          `REVOKE ALL ON DATABASE ${database} FROM PUBLIC; REVOKE ALL ON SCHEMA public FROM PUBLIC;
           CREATE ROLE ${reader} LOGIN NOSUPERUSER PASSWORD 'reader';
           GRANT CONNECT ON DATABASE ${database} TO ${reader}; GRANT USAGE ON SCHEMA backfill TO ${reader}; GRANT SELECT ON ALL TABLES IN SCHEMA backfill TO ${reader}`,
        ),
      );
      try {
        const url = new URL(location);
        url.username = reader;
        url.password = 'reader';
        const read = async <T>(args: string[], code = 0) => {
          const result = await runCli<T>(args, { BACKFILL_WAREHOUSE: url.toString() });
          expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(code);
          return result.json!;
        };
        const workers = await cli<DiffSummary>('diff', id);
        expect((await read<DiffSummary>(['diff', id, '--json'])).nodes).toEqual(workers.json.nodes);
        const lineageOf = await read<{ current: LedgerRow | null; versions: LedgerRow[] }>(['lineage', `${p}_src`, '2024-01-01', '--json']);
        expect(lineageOf.versions.map((v) => [v.version, v.backfillId, v.status])).toEqual([
          [2, id, 'staged'],
          [1, first, 'published'],
        ]);
        expect((await read<Report>(['report', id, '--format', 'json', '--output', '-'])).staged?.summary.nodes).toEqual(workers.json.nodes);
        // The staged backfill leases the datasets until it is published or discarded: the dry run,
        // read in full, says the rollback would be refused now (exit 1), and by which backfill.
        const dryRun = await read<{ backfillId: string; dryRun: boolean; refusedBy: Array<{ backfillId: string }>; removed: number }>(['rollback', first, '--dry-run', '--json'], 1);
        expect(dryRun).toMatchObject({ backfillId: first, dryRun: true, removed: 22 });
        expect(new Set(dryRun.refusedBy.map((r) => r.backfillId))).toEqual(new Set([id]));
        // It would wait for a decision on the shared dev server after the file's worker has gone.
        const discarded = await cli<{ versions: number }>('discard', id, '--reason', 'test over');
        expect(discarded.code, discarded.stderr).toBe(0);
        expect((await fx.client.wait(id, 60_000)).state).toBe('discarded');
      } finally {
        await withPostgres(location, (c) => c.query(`DROP OWNED BY ${reader}; DROP ROLE ${reader}`));
      }
    });
  }
});
