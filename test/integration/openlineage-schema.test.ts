/**
 * Every OpenLineage event backfill makes validates against OpenLineage's published JSON schemas
 * (draft 2020-12, ajv): the core RunEvent schema and each facet's own schema where it is at
 * hand (scripts/openlineage-spec.ts: on a clean machine, the five facet schemas a published
 * package carries; all eleven from an OpenLineage checkout). The events are those of a real
 * run on SQLite and PostgreSQL (test/lineage/scenario.ts), of the shop example, and the
 * builder's other shapes; the validator is shown to refuse broken events too.
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresWarehouse } from '../../activities/warehouse/postgres/postgres-dialect.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { buildRunEvent, checkAssertions, partitionSpan, partitionSubset, type LineageRun, type RunEvent } from '../../core/openlineage.ts';
import { FACET_SCHEMA_URLS, RUN_EVENT_SCHEMA_URL } from '../../core/openlineage.ts';
import { openLineageSpec, specPath, type InstalledSpec } from '../../scripts/openlineage-spec.ts';
import { exampleWithLineage, jobEvents } from '../lineage/example.ts';
import { CollectingTransport, runScenario } from '../lineage/scenario.ts';
import { OpenLineageValidator } from '../lineage/schema.ts';

const SERVER = process.env.BACKFILL_TEST_POSTGRES_URL ?? 'postgres://backfill:backfill@127.0.0.1:5432/postgres';
const database = `backfill_ols_${randomUUID().slice(0, 8)}`;
const admin = new pg.Client({ connectionString: SERVER });
let validator: OpenLineageValidator;
let spec: InstalledSpec;
let dir: string | undefined;
let connected = false;
const scenario: Record<'sqlite' | 'postgres', RunEvent[]> = { sqlite: [], postgres: [] };

beforeAll(async () => {
  spec = await openLineageSpec();
  validator = new OpenLineageValidator(spec.dir, spec.missing);
  dir = mkdtempSync(join(tmpdir(), 'backfill-ol-schema-'));
  const sqlite = new SqliteWarehouse(join(dir, 'warehouse.db'));
  const sqliteEvents = new CollectingTransport();
  await runScenario({ warehouse: sqlite, transport: sqliteEvents });
  await sqlite.close();
  scenario.sqlite = sqliteEvents.events;

  await admin.connect();
  connected = true;
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(SERVER);
  url.pathname = `/${database}`;
  const postgres = new PostgresWarehouse(url.toString());
  const postgresEvents = new CollectingTransport();
  await runScenario({ warehouse: postgres, transport: postgresEvents });
  await postgres.close();
  scenario.postgres = postgresEvents.events;
});
afterAll(async () => {
  if (connected) {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const label = (e: RunEvent) => `${e.eventType} ${e.job.name}`;

describe('the events of a backfill validate', () => {
  for (const kind of ['sqlite', 'postgres'] as const) {
    it(`on ${kind}: START and an end for the backfill and each node, every facet checked`, () => {
      const events = scenario[kind];
      expect(events.map(label)).toEqual(['START shop', 'START shop.orders', 'START shop.daily', 'START shop.flagged', 'COMPLETE shop.orders', 'COMPLETE shop.daily', 'FAIL shop.flagged', 'FAIL shop']);
      for (const event of events) expect({ event: label(event), problems: validator.problems(event) }).toEqual({ event: label(event), problems: [] });
      // Every kind of facet backfill writes was in these events, so every facet schema was used.
      const keys = new Set(events.flatMap((e) => [e.run.facets, e.job.facets, ...e.inputs.flatMap((d) => [d.facets, d.inputFacets]), ...e.outputs.flatMap((d) => [d.facets, d.outputFacets])].flatMap((f) => Object.values(f).map((x) => x._schemaURL))));
      expect(keys.size).toBe(11);
    });
  }

  const base: LineageRun = {
    eventType: 'ABORT',
    eventTime: Date.parse('2024-06-01T00:00:00Z'),
    producer: 'https://www.npmjs.com/package/durable-backfill/v/1.0.0',
    runId: '01900000-0000-7000-8000-000000000001',
    job: { namespace: 'analytics', name: 'shop', kind: 'backfill', description: 'x' },
    engine: { name: 'backfill', version: '1.0.0' },
    error: 'cancelled by alice: wrong range',
    inputs: [],
    outputs: [],
  };
  const shapes: Record<string, LineageRun> = {
    'an aborted backfill': base,
    'static keys listed, on inputs and outputs': {
      ...base,
      eventType: 'COMPLETE',
      inputs: [{ namespace: 'postgres://db:5432', name: 'w.public.a', subset: partitionSubset(partitionSpan({ kind: 'static', keys: ['eu', 'us'] }, {})!), fields: [{ name: 'x' }] }],
      outputs: [{ namespace: 'postgres://db:5432', name: 'w.public.b', subset: partitionSubset(partitionSpan({ kind: 'static', keys: ['eu'] }, {})!), rowCount: 0, assertions: [] }],
    },
    'one time partition, an equality': {
      ...base,
      eventType: 'START',
      nominal: { start: 0, end: 3600_000 },
      outputs: [{ namespace: 'sqlite://h/w.db', name: 'main.b', subset: partitionSubset(partitionSpan({ kind: 'time', grain: 'hour', start: 0, end: 3600_000 }, {})!) }],
    },
    'every kind of check': {
      ...base,
      eventType: 'FAIL',
      outputs: [
        {
          namespace: 'sqlite://h/w.db',
          name: 'main.b',
          assertions: checkAssertions(
            [
              { type: 'row_count', min: 1, max: 9 },
              { type: 'not_null', columns: ['a', 'b'] },
              { type: 'unique', columns: ['a'], severity: 'warn' },
              { type: 'sql', name: 's', sql: 'SELECT 1' },
              { type: 'drift', metric: 'row_count', maxChangePercent: 5 },
            ],
            new Map([['s', 1]]),
          ),
        },
      ],
    },
  };
  for (const [name, run] of Object.entries(shapes)) {
    it(`and so does ${name}`, () => {
      expect(validator.problems(buildRunEvent(run))).toEqual([]);
    });
  }
});

describe("the example's events validate", () => {
  it('two weeks of the shop example: a START and a COMPLETE for the backfill and each node run, with their datasets', async () => {
    const { spec, events } = await exampleWithLineage();
    expect(Object.fromEntries(jobEvents(events))).toEqual(Object.fromEntries([['shop', ['START', 'COMPLETE']], ...spec.nodes.map((n) => [`shop.${n.id}`, ['START', 'COMPLETE']])]));
    for (const event of events) expect({ event: label(event), problems: validator.problems(event) }).toEqual({ event: label(event), problems: [] });
    for (const node of spec.nodes) {
      const end = events.find((e) => e.eventType === 'COMPLETE' && e.job.name === `shop.${node.id}`)!;
      expect(end.inputs.map((d) => d.name)).toEqual(node.dependsOn.map((d) => `main.${d.node}`));
      expect(end.outputs.map((d) => d.name)).toEqual([`main.${node.id}`]);
    }
  });
});

/** The problems `using` finds in the failed node's event from SQLite, once `change` broke it. */
function problems(change: (e: RunEvent) => void, using = validator): string[] {
  const event = JSON.parse(JSON.stringify(scenario.sqlite.find((e) => e.eventType === 'FAIL' && e.job.name === 'shop.flagged'))) as RunEvent;
  change(event);
  return using.problems(event).map((p) => `${p.where}: ${p.message}`);
}

describe('the validator refuses what the schemas refuse', () => {

  it('a valid event has no problems, a changed one does', () => {
    expect(problems(() => undefined)).toEqual([]);
    expect(problems((e) => Reflect.deleteProperty(e.run, 'runId'))).toContainEqual(expect.stringMatching(/^event\/run: must have required property 'runId'/));
    expect(problems((e) => (e.run.runId = 'run-1'))).toContainEqual(expect.stringMatching(/^event\/run\/runId: must match format "uuid"/));
    expect(problems((e) => (e.eventTime = 'yesterday'))).toContainEqual(expect.stringMatching(/^event\/eventTime: must match format "date-time"/));
    expect(problems((e) => ((e as { eventType: string }).eventType = 'DONE'))).toContainEqual(expect.stringMatching(/^event\/eventType: must be equal to one of the allowed values/));
  });

  it('a facet is checked against its own schema, under its own name', () => {
    expect(problems((e) => Reflect.deleteProperty(e.run.facets.errorMessage!, 'programmingLanguage'))).toContainEqual(
      expect.stringMatching(/^run\.facets\.errorMessage: must have required property 'programmingLanguage'/),
    );
    expect(problems((e) => ((e.outputs[0]!.outputFacets.outputStatistics as unknown as { rowCount: unknown }).rowCount = '15'))).toContainEqual(
      expect.stringMatching(/^outputs\[0\]\.outputFacets\.outputStatistics\/rowCount: must be integer/),
    );
    expect(problems((e) => Reflect.deleteProperty((e.inputs[0]!.facets.schema as unknown as { fields: object[] }).fields[0]!, 'name'))).toContainEqual(
      expect.stringMatching(/^inputs\[0\]\.facets\.schema\/fields\/0: must have required property 'name'/),
    );
    expect(problems((e) => ((e.run.facets.engine = e.run.facets.processing_engine!), Reflect.deleteProperty(e.run.facets, 'processing_engine')))).toContainEqual(
      "run.facets.engine: its schema names this facet 'processing_engine'",
    );
    expect(problems((e) => (e.run.facets.processing_engine!._schemaURL = 'https://openlineage.io/spec/facets/9-9-9/X.json#/$defs/X'))).toContainEqual(
      'run.facets.processing_engine: names https://openlineage.io/spec/facets/9-9-9/X.json#/$defs/X, which is not among the loaded schemas',
    );
  });
});

describe('the schemas the events were checked against', () => {
  // What the package downloaded on a clean machine carries (scripts/openlineage-spec.ts).
  const inPackage = ['ProcessingEngineRunFacet', 'SchemaDatasetFacet', 'DatasourceDatasetFacet', 'ErrorMessageRunFacet', 'OutputStatisticsOutputDatasetFacet'];

  it('the core schema and at least the facet schemas the published package carries, each at the version the events name', () => {
    const named = Object.values(FACET_SCHEMA_URLS).map(specPath);
    expect(spec.missing).not.toContain(specPath(RUN_EVENT_SCHEMA_URL));
    for (const facet of inPackage) expect(named.filter((p) => p.endsWith(`/${facet}.json`) && !spec.missing.includes(p))).toHaveLength(1);
  });

  it('a facet without its schema at hand was checked by the core schema only, and only those', () => {
    const partly = [...validator.partlyChecked].map(specPath).sort();
    expect(partly.every((p) => spec.missing.includes(p))).toBe(true);
    expect(problems((e) => Reflect.deleteProperty(e.run.facets.nominalTime!, '_producer'))).toContainEqual(expect.stringMatching(/_producer/));
  });
});

describe('the validator loads the pinned schemas only', () => {
  const core = specPath(RUN_EVENT_SCHEMA_URL);
  const facet = specPath(FACET_SCHEMA_URLS.errorMessage);
  /** A folder with the cached core schema, and `extra` files written beside it. */
  const folder = (extra: Record<string, string>) => {
    const at = mkdtempSync(join(tmpdir(), 'backfill-ol-pins-'));
    mkdirSync(dirname(join(at, core)), { recursive: true });
    copyFileSync(join(spec.dir, core), join(at, core));
    for (const [path, text] of Object.entries(extra)) {
      mkdirSync(dirname(join(at, path)), { recursive: true });
      writeFileSync(join(at, path), text);
    }
    return at;
  };

  it('refuses a pinned file whose SHA-256 is not its pin, naming it', () => {
    const at = folder({ [facet]: JSON.stringify({ $id: FACET_SCHEMA_URLS.errorMessage.split('#')[0], type: 'object' }) });
    try {
      expect(() => new OpenLineageValidator(at)).toThrow(new RegExp(`is not the pinned ${facet.replace(/[.]/g, '\\.')} \\(its SHA-256 differs\\)`));
    } finally {
      rmSync(at, { recursive: true, force: true });
    }
  });

  it('never loads a file nobody pinned: a facet naming it is reported, not passed', () => {
    const url = 'https://openlineage.io/spec/facets/1-0-0/Planted.json';
    const at = folder({ 'facets/1-0-0/Planted.json': JSON.stringify({ $id: url, $defs: { Planted: {} } }) });
    try {
      const planted = new OpenLineageValidator(at);
      expect(problems((e) => (e.run.facets.errorMessage!._schemaURL = `${url}#/$defs/Planted`), planted)).toContainEqual(
        `run.facets.errorMessage: names ${url}#/$defs/Planted, which is not among the loaded schemas`,
      );
    } finally {
      rmSync(at, { recursive: true, force: true });
    }
  });
});
