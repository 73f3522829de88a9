/**
 * Rollback on a real server, with a worker in a process of its own, on every warehouse (SQLite,
 * PostgreSQL and the Parquet lake): a
 * backfill rolled back leaves every dataset as it was before it, checksum for checksum; a
 * worker killed mid-rollback loses nothing; a second rollback changes nothing; a partition a
 * later backfill changed is reported and left alone, unless --force.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify, stripVTControlCharacters } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical.ts';
import { LakeLayout } from '../../activities/warehouse/lake/layout.ts';
import { jsValue } from '../../activities/warehouse/lake/values.ts';
import { quoteIdent, quoteLiteral, versionsTable } from '../../activities/warehouse/sql.ts';
import type { Warehouse } from '../../activities/warehouse/types.ts';
import { BackfillError } from '../../core/errors.ts';
import { auditTrail } from '../../client/audit.ts';
import { describeChange } from '../../core/audit.ts';
import { renderStatus } from '../../client/render.ts';
import { gatherReport } from '../../client/report/gather.ts';
import { overview } from '../../client/report/sections.ts';
import { rollbackWorkflowId, type RollbackSummary } from '../../core/rollback.ts';
import type { ResolvedSpec } from '../../core/spec.ts';
import { backendFixture, type Backend } from './backend-fixture.ts';
import { ROOT, address, testSpec, waitFor } from './helpers.ts';

const run = promisify(execFile);

/** Three SQL datasets, daily src and daily, and weekly, from `from` (default 2024-01-01) to `to`: `factor` scales every value. */
function sqlSpec(queue: string, prefix: string, options: { factor: number; from?: string; to: string }): ResolvedSpec {
  return testSpec(queue, {
    name: `rollback-${prefix}`,
    partitions: { grain: 'day', start: options.from ?? '2024-01-01', end: options.to },
    defaults: { concurrency: 4, heartbeatTimeout: '5s', retry: { initialInterval: '200ms', maximumInterval: '1s' } },
    nodes: [
      { id: `${prefix}_src`, sql: 'SELECT :partition AS day, 1 AS k, :factor AS v UNION ALL SELECT :partition, 2, :factor * 2', params: { factor: options.factor } },
      { id: `${prefix}_daily`, dependsOn: [`${prefix}_src`], sql: `SELECT day, SUM(v) AS total, COUNT(*) AS n FROM ${prefix}_src GROUP BY day` },
      { id: `${prefix}_weekly`, partitions: { grain: 'week' }, dependsOn: [`${prefix}_daily`], sql: `SELECT :partition AS week, SUM(total) AS total, COUNT(*) AS days FROM ${prefix}_daily` },
    ],
  });
}

const nodesOf = (prefix: string) => [`${prefix}_src`, `${prefix}_daily`, `${prefix}_weekly`];

type Snapshot = {
  views: Record<string, string[]>;
  current: Record<string, { version: number; checksum: string | null; backfillId: string }>;
  /** On a lake: each dataset's published Parquet files as a plain DuckDB reads them, without backfill. */
  files?: Record<string, string[]>;
};

/** Rows of `sql` read by a DuckDB of the test's own, with no backfill in between (values in JavaScript as the lake gives them). */
async function duckdbRows(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const connection = await instance.connect();
    try {
      const rows = (await connection.runAndReadAll(sql)).getRowObjects();
      // As the lake's view gives them: whole numbers as numbers (a DECIMAL(38,0) too, the files' type for integers wider than 64 bits).
      return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, jsValue(v)])));
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

/** What any Parquet reader sees of a lake's dataset: its directory's published files, backfill's own columns left out. */
async function publishedFiles(root: string, node: string): Promise<string[]> {
  const dir = join(root, node);
  // DuckDB refuses a glob that matches nothing: no published file is no row.
  if (!existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.parquet'))) return [];
  const rows = await duckdbRows(`SELECT * EXCLUDE (__partition, __version) FROM read_parquet(${quoteLiteral(join(dir, '*.parquet'))}, union_by_name = true)`);
  return rows.map((row) => canonicalJson(row)).sort();
}

/** What the datasets show (their views' rows) and what the ledger says is published (version, checksum, backfill); on a lake, also the published files. */
async function snapshotOf(warehouse: Warehouse, prefix: string, lakeRoot?: string): Promise<Snapshot> {
  const views: Snapshot['views'] = {};
  const current: Snapshot['current'] = {};
  const files: NonNullable<Snapshot['files']> = {};
  for (const node of nodesOf(prefix)) {
    views[node] = (await warehouse.query(`SELECT * FROM ${node}`)).map((row) => canonicalJson(row)).sort();
    for (const row of await warehouse.ledger({ node })) {
      if (row.current) current[`${node}/${row.partition}`] = { version: row.version, checksum: row.checksum, backfillId: row.backfillId };
    }
    if (lakeRoot !== undefined) {
      files[node] = await publishedFiles(lakeRoot, node);
      // A reader without backfill sees exactly what the dataset's view shows.
      expect(files[node], `${node}: the published files against the view`).toEqual(views[node]);
    }
  }
  return lakeRoot === undefined ? { views, current } : { views, current, files };
}

describe.each<Backend>(['sqlite', 'postgres', 'lake'])('rollback on %s', (kind) => {
  const fx = backendFixture(kind, 'rollback');
  const { queue, location } = fx;
  const lakeRoot = kind === 'lake' ? join(fx.dir, 'lake') : undefined;
  const snapshot = (warehouse: Warehouse, prefix: string) => snapshotOf(warehouse, prefix, lakeRoot);

  /**
   * Changes stored rows behind the warehouse's back (PostgreSQL keeps the versions tables in the
   * schema `backfill`; a lake's version is a file, rewritten with the change).
   */
  const tamper = async (node: string, set: string, partition: string, version: number): Promise<void> => {
    if (kind === 'lake') {
      const file = new LakeLayout(lakeRoot!).version(node, partition, version);
      const [column, value] = set.split(/\s*=\s*/);
      await duckdbRows(`COPY (SELECT * REPLACE (${value} AS ${quoteIdent(column!)}) FROM read_parquet(${quoteLiteral(file)})) TO ${quoteLiteral(`${file}.tampered`)} (FORMAT parquet)`);
      renameSync(`${file}.tampered`, file);
      return;
    }
    const table = `${kind === 'postgres' ? 'backfill.' : ''}${quoteIdent(versionsTable(node))}`;
    const sql = `UPDATE ${table} SET ${set} WHERE __partition = '${partition}' AND __version = ${version}`;
    if (kind === 'sqlite') {
      const db = new Database(location);
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
      return;
    }
    const connection = new pg.Client({ connectionString: location });
    await connection.connect();
    try {
      await connection.query(sql);
    } finally {
      await connection.end();
    }
  };

  const backfill = async (spec: ResolvedSpec): Promise<string> => {
    const { backfillId } = await fx.client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 200 } });
    expect((await fx.client.wait(backfillId, 120_000)).state).toBe('completed');
    return backfillId;
  };

  it('restores every dataset to its state before the backfill, checksum for checksum; a second rollback changes nothing', async () => {
    const p = `a_${kind}`;
    await backfill(sqlSpec(queue, p, { factor: 1, to: '2024-01-11' }));
    const before = await snapshot(fx.warehouse, p);
    const second = await backfill(sqlSpec(queue, p, { factor: 2, to: '2024-01-13' }));
    const changed = await snapshot(fx.warehouse, p);
    expect(changed.views).not.toEqual(before.views);
    expect(Object.values(changed.current).every((c) => c.backfillId === second)).toBe(true);

    // 10 days and 2 weeks existed before; the 2 new days of src and daily did not.
    const summary = await fx.client.rollback(second);
    expect(summary).toMatchObject({ backfillId: second, restored: 22, removed: 4, alreadyRestored: 0, leftAlone: 0, forced: 0, changedBy: {} });
    expect(summary.nodes.map((n) => n.node)).toEqual([`${p}_weekly`, `${p}_daily`, `${p}_src`]);
    expect(await snapshot(fx.warehouse, p)).toEqual(before);
    const audit = await fx.warehouse.rollbacks({ backfillId: second });
    expect(audit).toHaveLength(26);
    expect(new Set(audit.map((r) => r.rollbackId))).toEqual(new Set([summary.rollbackId]));
    // Before, status said only 'completed · 26/26 done', as if the data were still the backfill's.
    const status = await fx.client.status(second);
    expect(status).toMatchObject({ state: 'completed', rollback: { state: 'completed', by: fx.client.identity, counts: { restored: 22, removed: 4, alreadyRestored: 0, leftAlone: 0 } } });
    expect(Date.parse(status.rollback!.endedAt!)).toBeGreaterThan(0);
    const shown = stripVTControlCharacters(renderStatus(status));
    expect(shown).toContain(`⟲ rolled back at ${status.rollback!.endedAt!} (`);
    expect(shown).toContain(` by ${fx.client.identity}: 22 restored, 4 removed, 0 already restored, 0 left alone — the data is back at its versions before this backfill`);
    expect(renderStatus(status)).not.toContain('retry-failed');
    // Nor did the report say it (the audit's 'rollback asked' alone).
    const report = await gatherReport(fx.client, fx.warehouse, second);
    expect(report.rolledBack).toMatchObject({ partitions: 26, stillPublished: 0 });

    const again = await fx.client.rollback(second);
    expect(again).toMatchObject({ restored: 0, removed: 0, alreadyRestored: 26, leftAlone: 0 });
    expect(again.rollbackId).not.toBe(summary.rollbackId);
    expect(await snapshot(fx.warehouse, p)).toEqual(before);
    expect(await fx.warehouse.rollbacks({ backfillId: second })).toHaveLength(26);
    // The audit trail says how each rollback ended, not only that it was asked.
    const rollbacks = (await auditTrail(fx.client, second)).filter((e) => e.action === 'rollback');
    expect(rollbacks.map((e) => [e.outcome, e.identity, describeChange(e)])).toEqual([
      ['applied', fx.client.identity, expect.stringMatching(/^rollback asked/)],
      ['applied', fx.client.identity, 'rollback done: 22 restored to the version before it, 4 removed (the backfill made them)'],
      ['applied', fx.client.identity, expect.stringMatching(/^rollback asked/)],
      ['applied', fx.client.identity, 'rollback done: 26 at the version before it already'],
    ]);
  });

  it('a worker killed mid-rollback and started again finishes it, restoring each partition once', async () => {
    const p = `k_${kind}`;
    await backfill(sqlSpec(queue, p, { factor: 1, to: '2024-01-31' }));
    const before = await snapshot(fx.warehouse, p);
    const second = await backfill(sqlSpec(queue, p, { factor: 5, to: '2024-01-31' }));
    const total = Object.keys(before.current).length;

    // One partition per activity and a short history: it continues as new. The server starts the
    // rollback's activities at 5 a second until the kill, so that the rest cannot be restored in
    // the moment between counting and killing (a fresh-clone CI saw a lake's rollback end in it).
    await fx.client.setQueueRate(queue, 5, { force: true });
    const pending = fx.client.rollback(second, { tuning: { batchSize: 1, heartbeatTimeout: '2s', historyLimit: 150 } });
    pending.catch(() => undefined);
    let killed: { restoredBeforeKill: number; status: string } | undefined;
    try {
      const restoredBeforeKill = await waitFor('the rollback to restore some partitions', async () => {
        const n = (await fx.warehouse.rollbacks({ backfillId: second })).length;
        return n >= 5 ? n : undefined;
      }, 60_000, 20);
      await fx.worker.kill();
      const description = await fx.client.client.workflow.getHandle(rollbackWorkflowId(second)).describe();
      killed = { restoredBeforeKill, status: description.status.name };
    } finally {
      await fx.client.setQueueRate(queue, null, { force: true });
      // The next tests need a worker, whatever became of this one.
      if (!fx.worker.running) await fx.worker.start();
    }
    expect(killed.status).toBe('RUNNING');
    expect(killed.restoredBeforeKill).toBeLessThan(total);

    const summary: RollbackSummary = await pending;
    expect(summary).toMatchObject({ restored: total, removed: 0, alreadyRestored: 0, leftAlone: 0 });
    expect(summary.runs).toBeGreaterThan(1);
    expect(await snapshot(fx.warehouse, p)).toEqual(before);
    const audit = await fx.warehouse.rollbacks({ backfillId: second });
    expect(audit).toHaveLength(total);
    expect(new Set(audit.map((r) => `${r.node}/${r.partition}`)).size).toBe(total);
  });

  it('leaves alone and reports a partition a later backfill changed; --force restores it too (the command line)', async () => {
    const p = `f_${kind}`;
    await backfill(sqlSpec(queue, p, { factor: 1, to: '2024-01-11' }));
    const before = await snapshot(fx.warehouse, p);
    const second = await backfill(sqlSpec(queue, p, { factor: 2, to: '2024-01-11' }));
    // Two days of src and daily, and the week they fall in.
    const third = await backfill(sqlSpec(queue, p, { factor: 3, from: '2024-01-03', to: '2024-01-05' }));
    const byThird = Object.entries((await snapshot(fx.warehouse, p)).current)
      .filter(([, c]) => c.backfillId === third)
      .map(([key]) => key)
      .sort();
    expect(byThird).toEqual([`${p}_daily/2024-01-03`, `${p}_daily/2024-01-04`, `${p}_src/2024-01-03`, `${p}_src/2024-01-04`, `${p}_weekly/2024-W01`]);

    const cli = (...args: string[]) =>
      run('node', [join(ROOT, 'bin/backfill.js'), ...args, '--json'], { env: { ...process.env, TEMPORAL_ADDRESS: address(), NO_COLOR: '1' } }).then(
        ({ stdout }) => ({ code: 0, json: JSON.parse(stdout) as unknown }),
        (error: { code: number; stdout: string }) => ({ code: error.code, json: JSON.parse(error.stdout) as unknown }),
      );
    const rollback = async (...args: string[]) => {
      const { code, json } = await cli('rollback', second, ...args);
      return { code, json: json as RollbackSummary };
    };

    const first = await rollback();
    expect(first.code).toBe(2);
    // No --warehouse: what it left stale downstream is not known here, and it says so (before, it said nothing, as if none).
    expect(first.json).toMatchObject({ downstream: [], downstreamChecked: false });
    expect(first.json).toMatchObject({ restored: 17, removed: 0, leftAlone: 5, forced: 0, changedBy: { [third]: 5 } });
    expect(first.json.leftAloneExamples.map((e) => `${e.node}/${e.partition}`).sort()).toEqual(byThird);
    expect(first.json.leftAloneExamples.every((e) => e.changedBy === third && e.version === 2 && e.currentVersion === 3)).toBe(true);
    const now = await snapshot(fx.warehouse, p);
    for (const [key, c] of Object.entries(now.current)) expect(c.backfillId, key).toBe(byThird.includes(key) ? third : before.current[key]!.backfillId);

    const forced = await rollback('--force', '--warehouse', location);
    expect(forced.code).toBe(0);
    expect(forced.json).toMatchObject({ downstream: [], downstreamChecked: true });
    // status (the command line) names the latest rollback.
    expect((await cli('status', second)).json).toMatchObject({ state: 'completed', rollback: { state: 'completed', counts: { restored: 5, alreadyRestored: 17 } } });
    expect(forced.json).toMatchObject({ restored: 5, forced: 5, alreadyRestored: 17, leftAlone: 0, force: true });
    expect(await snapshot(fx.warehouse, p)).toEqual(before);
    expect((await fx.warehouse.rollbacks({ backfillId: second })).filter((r) => r.forced).map((r) => `${r.node}/${r.partition}`).sort()).toEqual(byThird);
    const lineage = await cli('lineage', `${p}_src`, '2024-01-03', '--warehouse', location);
    expect(lineage.json).toMatchObject({
      current: { version: 1, backfillId: before.current[`${p}_src/2024-01-03`]!.backfillId },
      rollbacks: [{ backfillId: second, rollbackId: forced.json.rollbackId, fromVersion: 3, toVersion: 1, forced: true }],
    });
    // The third backfill's report says the forced rollback of the second undid it (before, it looked intact).
    const report = await gatherReport(fx.client, fx.warehouse, third);
    expect(report.undoneByOthers).toEqual([{ rollbackId: forced.json.rollbackId, backfillId: second, forced: true, partitions: 5 }]);
    expect(Object.fromEntries(overview(report))['undone by others']).toBe(`5 partitions by rollback ${forced.json.rollbackId} of backfill ${second} (--force): its versions are no longer the data there`);
    expect((await gatherReport(fx.client, fx.warehouse, second)).undoneByOthers).toEqual([]);

    // A later backfill over the restored data; rolling the second back again, forced, touches none of it.
    // Before, the forced rollback of a backfill rolled back already undid the later, unrelated one.
    const fourth = await backfill(sqlSpec(queue, p, { factor: 4, from: '2024-01-03', to: '2024-01-05' }));
    const later = await snapshot(fx.warehouse, p);
    const again = await rollback('--force');
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ restored: 0, removed: 0, forced: 0 });
    expect(await snapshot(fx.warehouse, p)).toEqual(later);
    expect(Object.values(later.current).filter((c) => c.backfillId === fourth)).toHaveLength(5);
  });

  it('stops at a version whose rows changed after it was published, naming it, without retrying; the rest stays as it was', async () => {
    const p = `t_${kind}`;
    await backfill(sqlSpec(queue, p, { factor: 1, to: '2024-01-04' }));
    const second = await backfill(sqlSpec(queue, p, { factor: 2, to: '2024-01-04' }));
    await tamper(`${p}_src`, 'v = 999', '2024-01-02', 1);
    const error = await fx.client.rollback(second).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackfillError);
    expect((error as Error).message).toMatch(
      new RegExp(`the rollback of backfill '${second}' failed: version 1 of ${p}_src 2024-01-02: its rows hash to [0-9a-f]{16}… \\(2 rows\\), but the ledger recorded`),
    );
    expect((error as Error).message).toMatch(/run 'backfill rollback .*' again/);
    const state = (await snapshot(fx.warehouse, p)).current;
    // Downstream first: weekly and daily were restored, src up to the tampered partition.
    expect(state[`${p}_daily/2024-01-03`]!.backfillId).not.toBe(second);
    expect(state[`${p}_src/2024-01-01`]!.backfillId).not.toBe(second);
    expect(state[`${p}_src/2024-01-02`]!.backfillId).toBe(second);
    expect(state[`${p}_src/2024-01-03`]!.backfillId).toBe(second);
    // Before, the audit trail had only 'rollback asked', as if it had been done.
    const ended = (await auditTrail(fx.client, second)).filter((e) => e.action === 'rollback').at(-1)!;
    expect(ended).toMatchObject({ outcome: 'failed', details: { failureType: 'ChecksumMismatch' } });
    expect(describeChange(ended)).toMatch(/^the rollback failed \(ChecksumMismatch\): .*its rows hash to .*what it restored before it stopped stays restored/);
  });

  it('refuses a backfill that is still running, and rolls it back once cancelled', async () => {
    const spec = testSpec(queue, {
      name: 'rollback-running',
      // A year at 200 ms a day, one at a time: over a minute, so that it is still running for the
      // refusal and the cancel however loaded the machine (a month took about 6 s in all).
      partitions: { grain: 'day', start: '2024-01-01', end: '2025-01-01' },
      defaults: { concurrency: 1 },
      nodes: [{ id: `r_${kind}`, transform: 'sleep', params: { ms: 200 } }],
    });
    const { backfillId } = await fx.client.start(spec, { taskQueue: queue, tuning: { reportIntervalMs: 200 } });
    const refused = await fx.client.rollback(backfillId).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BackfillError);
    expect(refused).toMatchObject({ code: 'still_running' });
    expect((refused as Error).message).toMatch(/is still running: cancel it first \('backfill cancel .*'\) or wait for it to end/);

    await waitFor('a partition to be published', async () => (await fx.warehouse.ledger({ backfillId })).length > 0);
    await fx.client.cancel(backfillId);
    expect((await fx.client.wait(backfillId, 60_000)).state).toBe('cancelled');
    const published = (await fx.warehouse.ledger({ backfillId })).length;
    const summary = await fx.client.rollback(backfillId);
    expect(summary).toMatchObject({ restored: 0, removed: published, leftAlone: 0 });
    expect(await fx.warehouse.query(`SELECT COUNT(*) AS n FROM r_${kind}`)).toEqual([{ n: 0 }]);
  });
});
