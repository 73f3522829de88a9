/**
 * Lineage arriving at a real consumer: the events of a small backfill (test/lineage/scenario.ts)
 * on PostgreSQL and on SQLite, written by the file transport, read back by OpenLineage's own
 * Python client (openlineage-python from PyPI, in .backfill/venv) into its own classes; and the
 * same events on the wire, sent by backfill's HTTP transport and by the Python client's, side
 * by side on a local HTTP server.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLineageTransport, HttpLineageTransport } from '../../activities/lineage/transports.ts';
import { lineageRunId } from '../../activities/lineage/run-ids.ts';
import { PostgresWarehouse } from '../../activities/warehouse/postgres/postgres-dialect.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { sqliteNamespace, type RunEvent } from '../../core/openlineage.ts';
import { readWithClient } from '../lineage/python-client.ts';
import { exampleWithLineage, jobEvents } from '../lineage/example.ts';
import { STARTED_AT, runScenario } from '../lineage/scenario.ts';

const SERVER = process.env.BACKFILL_TEST_POSTGRES_URL ?? 'postgres://backfill:backfill@127.0.0.1:5432/postgres';
const database = `backfill_ol_${randomUUID().slice(0, 8)}`;
const admin = new pg.Client({ connectionString: SERVER });
let dir: string;

/** What read_events.py prints for each event: the client's objects, read back. */
type Seen = {
  eventType: string;
  job: string;
  runId: string;
  parentRunId: string | null;
  rootRunId: string | null;
  facets: string[];
  inputs: string[];
  outputs: Array<{ dataset: string; fields: string[] | null; rowCount: number | null; assertions: Array<[string, boolean]> | null }>;
};

/** The events of the scenario on each warehouse, as the file transport wrote them. */
const files = { postgres: '', sqlite: '', sqliteDb: '' };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-ol-it-'));
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  files.postgres = join(dir, 'postgres.jsonl');
  const postgres = new PostgresWarehouse(urlFor(database));
  try {
    await runScenario({ warehouse: postgres, transport: new FileLineageTransport({ type: 'file', path: files.postgres, append: true }), runKey: 'pg-run' });
  } finally {
    await postgres.close();
  }
  files.sqlite = join(dir, 'sqlite.jsonl');
  files.sqliteDb = join(dir, 'warehouse.db');
  const sqlite = new SqliteWarehouse(files.sqliteDb);
  try {
    await runScenario({ warehouse: sqlite, transport: new FileLineageTransport({ type: 'file', path: files.sqlite, append: true }), runKey: 'sqlite-run' });
  } finally {
    await sqlite.close();
  }
});
afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

function urlFor(db: string): string {
  const url = new URL(SERVER);
  url.pathname = `/${db}`;
  return url.toString();
}

const lines = (path: string): RunEvent[] =>
  readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as RunEvent);

describe('the Python client reads the events back', () => {
  it('on PostgreSQL: runs, parents, datasets named postgres://host:port and db.schema.table, columns, rows, assertions', async () => {
    const file = files.postgres;
    const seen = (await readWithClient([file])) as Seen[];
    // The views are in the connection's current schema (here the role's own, `backfill`, which the warehouse creates).
    const client = new pg.Client({ connectionString: urlFor(database) });
    await client.connect();
    const schema = (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
    await client.end();
    const port = new URL(SERVER).port || '5432';
    const ns = `postgres://${new URL(SERVER).hostname}:${port}`;
    const backfillRun = lineageRunId(STARTED_AT, 'pg-run');
    expect(seen.map((s) => `${s.eventType} ${s.job}`)).toEqual([
      'START backfill/shop',
      'START backfill/shop.orders',
      'START backfill/shop.daily',
      'START backfill/shop.flagged',
      'COMPLETE backfill/shop.orders',
      'COMPLETE backfill/shop.daily',
      'FAIL backfill/shop.flagged',
      'FAIL backfill/shop',
    ]);
    for (const s of seen.filter((x) => x.job !== 'backfill/shop')) {
      expect(s).toMatchObject({ parentRunId: backfillRun, rootRunId: backfillRun });
      expect(s.runId).toBe(lineageRunId(STARTED_AT, 'pg-run', s.job.split('.')[1]));
    }
    const daily = seen.find((s) => s.eventType === 'COMPLETE' && s.job === 'backfill/shop.daily')!;
    expect(daily.inputs).toEqual([`${ns}/${database}.${schema}.orders`]);
    expect(daily.outputs).toEqual([{ dataset: `${ns}/${database}.${schema}.daily`, fields: ['day', 'orders', 'revenue_cents'], rowCount: 3, assertions: [['quiet day', false]] }]);
    const end = seen[seen.length - 1]!;
    expect(end.facets).toEqual(['errorMessage', 'nominalTime', 'processing_engine']);
    expect(end.outputs.map((o) => [o.dataset, o.rowCount])).toEqual([
      [`${ns}/${database}.${schema}.orders`, 15],
      [`${ns}/${database}.${schema}.daily`, 3],
      [`${ns}/${database}.${schema}.flagged`, 0],
    ]);
    // PostgreSQL's own names for the column types.
    const orders = lines(file).find((e) => e.eventType === 'COMPLETE' && e.job.name === 'shop.orders')!;
    expect(orders.outputs[0]!.facets.schema).toMatchObject({ fields: [{ name: 'order_id', type: 'TEXT' }, { name: 'amount_cents', type: 'INTEGER' }, { name: 'day', type: 'TEXT' }] });
  });

  it('on SQLite: datasets named after the host and the file', async () => {
    const seen = (await readWithClient([files.sqlite])) as Seen[];
    expect(seen).toHaveLength(8);
    const orders = seen.find((s) => s.eventType === 'COMPLETE' && s.job === 'backfill/shop.orders')!;
    expect(orders.outputs).toEqual([{ dataset: `${sqliteNamespace(hostname(), files.sqliteDb)}/main.orders`, fields: ['order_id', 'amount_cents', 'day'], rowCount: 15, assertions: [['row_count', true], ['not_null', true], ['unique', true]] }]);
  });

  it('refuses an event the client cannot read as it was written', async () => {
    const [good] = lines(files.sqlite);
    const tampered = (change: (e: RunEvent) => void) => {
      const copy = JSON.parse(JSON.stringify(good)) as RunEvent;
      change(copy);
      const path = join(dir, `tampered-${randomUUID()}.jsonl`);
      writeFileSync(path, `${JSON.stringify(copy)}\n`);
      return readWithClient([path]).then(
        () => 'read',
        (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
      );
    };
    expect(await tampered((e) => (e.run.facets.processing_engine!._schemaURL = 'https://openlineage.io/spec/facets/9-9-9/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet'))).toMatch(/names no facet the client knows/);
    expect(await tampered((e) => Object.assign(e.run.facets.processing_engine!, { engine: 'x' }))).toMatch(/has no field 'engine'/);
    expect(await tampered((e) => (e.run.runId = 'not-a-uuid'))).toMatch(/runId|UUID|uuid/);
    expect(await tampered(() => undefined)).toBe('read');
  });
});

describe("the example's lineage", () => {
  it('two weeks of the shop example: its workflows emit a START and a COMPLETE for the backfill and each node run, with its inputs and outputs, read by the Python client', async () => {
    const { spec, result, events, file, warehousePath } = await exampleWithLineage();
    const jobs = jobEvents(events);
    expect(Object.fromEntries(jobs)).toEqual(Object.fromEntries([['shop', ['START', 'COMPLETE']], ...spec.nodes.map((n) => [`shop.${n.id}`, ['START', 'COMPLETE']])]));
    // The backfill's run ends no earlier than every node's (the last node's end may be stamped in
    // the same workflow task, at the same time).
    const backfillEnd = events.find((e) => e.eventType === 'COMPLETE' && e.job.name === 'shop')!;
    const latest = [...events].sort((a, b) => a.eventTime.localeCompare(b.eventTime)).pop()!;
    expect(latest.eventTime).toBe(backfillEnd.eventTime);
    const seen = (await readWithClient([file])) as Seen[];
    const ns = sqliteNamespace(hostname(), warehousePath);
    const dataset = (node: string) => `${ns}/main.${node}`;
    expect(seen).toHaveLength(events.length);
    const backfillRun = lineageRunId(result.carry.startedAt!, result.carry.runKey);
    for (const node of spec.nodes) {
      const [start, end] = ['START', 'COMPLETE'].map((type) => seen.find((s) => s.job === `backfill/shop.${node.id}` && s.eventType === type));
      expect(start!.runId).toBe(end!.runId);
      expect(end).toMatchObject({ parentRunId: backfillRun, inputs: node.dependsOn.map((d) => dataset(d.node)) });
      const rows = result.progress.nodes.find((n) => n.id === node.id)!;
      expect(rows.failed).toBe(0);
      expect(end!.outputs).toHaveLength(1);
      expect(end!.outputs[0]).toMatchObject({ dataset: dataset(node.id), assertions: node.checks.length > 0 ? node.checks.map((c) => [c.name ?? c.type, true]) : null });
      expect(end!.outputs[0]!.fields!.length).toBeGreaterThan(0);
    }
    // The rows each node published are the ledger's; orders_raw's count is the example's own.
    const raw = seen.find((s) => s.eventType === 'COMPLETE' && s.job === 'backfill/shop.orders_raw')!;
    expect(raw.outputs[0]!.rowCount).toBeGreaterThan(14 * 150);
    const end = seen.find((s) => s.eventType === 'COMPLETE' && s.job === 'backfill/shop')!;
    expect(end.outputs.map((o) => o.dataset)).toEqual(spec.nodes.map((n) => dataset(n.id)));
    expect(end.runId).toBe(backfillRun);
  });
});

/** Records every request it is sent. */
async function receiver(): Promise<{ url: string; requests: Array<{ path: string; headers: IncomingHttpHeaders; body: unknown }>; server: Server }> {
  const requests: Array<{ path: string; headers: IncomingHttpHeaders; body: unknown }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

/** Without empty lists and objects: the Python client writes an absent collection as an empty one. */
function withoutEmpty(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutEmpty);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const pruned = withoutEmpty(v);
    if (!(Array.isArray(pruned) && pruned.length === 0) && !(typeof pruned === 'object' && pruned !== null && Object.keys(pruned).length === 0)) out[k] = pruned;
  }
  return out;
}

describe('on the wire', () => {
  it("backfill's HTTP transport sends what OpenLineage's Python client sends: same path, same Bearer token, same events", async () => {
    const events = lines(files.postgres);
    const ours = await receiver();
    const theirs = await receiver();
    try {
      const transport = new HttpLineageTransport({ type: 'http', url: new URL('api/v1/lineage', ours.url).href, apiKey: 'secret-key', timeoutMs: 5000, headers: {}, attempts: 1 });
      for (const event of events) await transport.send(event);
      await readWithClient([files.postgres], { emitUrl: theirs.url, apiKey: 'secret-key' });

      expect(ours.requests).toHaveLength(events.length);
      expect(theirs.requests).toHaveLength(events.length);
      for (const [i, mine] of ours.requests.entries()) {
        const other = theirs.requests[i]!;
        expect(mine.path).toBe('/api/v1/lineage');
        expect(other.path).toBe('/api/v1/lineage');
        expect(mine.headers.authorization).toBe('Bearer secret-key');
        expect(other.headers.authorization).toBe('Bearer secret-key');
        expect(mine.headers['content-type']).toBe(other.headers['content-type']);
        // The Python client adds a run facet of its own: a tag with its version.
        const { tags, ...facets } = (other.body as RunEvent).run.facets;
        expect(tags).toMatchObject({ tags: [{ key: 'openlineage_client_version', source: 'OPENLINEAGE_CLIENT' }] });
        const theirsWithoutTag = { ...(other.body as RunEvent), run: { ...(other.body as RunEvent).run, facets } };
        expect(withoutEmpty(mine.body)).toEqual(withoutEmpty(theirsWithoutTag));
      }
    } finally {
      ours.server.close();
      theirs.server.close();
    }
  });
});
