/** The warehouse contract on PostgreSQL, what is PostgreSQL's own, and checksums equal to SQLite's. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dialect } from '../../activities/warehouse/dialect.ts';
import { PostgresWarehouse } from '../../activities/warehouse/postgres/postgres-dialect.ts';
import { START_FUNCTION } from '../../activities/warehouse/postgres/publish-start.ts';
import { actsOutside } from '../../activities/warehouse/postgres/spec-sql.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { quoteIdent, versionsTable } from '../../activities/warehouse/sql.ts';
import { CommitDeadlineError, SqlError, type PartitionWrite, type Row } from '../../activities/warehouse/types.ts';
import type { RawAccess } from '../warehouse/suite.ts';
import { ORDERS, plannedReading, rejection, settledWithin, warehouseSuite, write } from '../warehouse/suite.ts';
import { readersReadAt, writeLedger } from '../warehouse/readers.ts';
import { runCli } from '../unit/run-cli.ts';
import { openExistingWarehouse, openLedgerIfThere } from '../../client/existing-warehouse.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { thrownBackfillError } from '../unit/backfill-error.ts';
import { staleDownstreamCase } from '../unit/stale-downstream-case.ts';

/** A ledger of an older layout: the schema `schema` with its ledger table alone, which setup would complete and a reader must leave as it is. */
function olderLedger(schema: string): string {
  return `CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.ledger (
      node text COLLATE "C" NOT NULL, partition text COLLATE "C" NOT NULL, version integer NOT NULL, status text NOT NULL,
      backfill_id text NOT NULL, run_key text NOT NULL, workflow_id text NOT NULL, row_count bigint, checksum text, schema_hash text,
      transform text NOT NULL, params jsonb NOT NULL, code_version text NOT NULL, inputs jsonb NOT NULL, attempt integer NOT NULL,
      executions integer NOT NULL DEFAULT 1, started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL, duration_ms bigint NOT NULL,
      previous_version integer, error text, PRIMARY KEY (node, partition, version));`;
}

const SERVER = process.env.BACKFILL_TEST_POSTGRES_URL ?? 'postgres://backfill:backfill@127.0.0.1:5432/postgres';
const database = `backfill_wh_${randomUUID().slice(0, 8)}`;
const admin = new pg.Client({ connectionString: SERVER });
/** Spec SQL that never ends, and costs the server nothing while it runs. */
const runaway = (tag: string) => `SELECT pg_sleep(600) IS NULL AS ${tag}`;

function urlFor(db: string, searchPath?: string): string {
  const url = new URL(SERVER);
  url.pathname = `/${db}`;
  if (searchPath) url.searchParams.set('options', `-c search_path=${searchPath}`);
  return url.toString();
}

beforeAll(async () => {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
});
/** Roles a test made, dropped with the database, whose objects they own. */
const roles: string[] = [];
afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.end();
});

/** A warehouse in schemas of its own: one for the datasets' views, one for the ledger and versions. */
async function fresh(): Promise<{ warehouse: PostgresWarehouse; url: string; raw: RawAccess; internal: string; cleanup(): Promise<void> }> {
  const name = `t_${randomUUID().slice(0, 8)}`;
  await execIn(urlFor(database), `CREATE SCHEMA ${name}`);
  const url = urlFor(database, name);
  const internal = `${name}_internal`;
  // The tests connect as a superuser: its warning has a test of its own.
  const warehouse = new PostgresWarehouse(url, { schema: internal, warn: () => undefined });
  const raw: RawAccess = {
    exec: (sql) => execIn(url, sql),
    rows: async (sql) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        // COUNT(*) is a bigint, which pg returns as a string.
        return (await client.query<Row>(sql)).rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v])));
      } finally {
        await client.end();
      }
    },
    versionsTable: (node) => `${quoteIdent(internal)}.${quoteIdent(versionsTable(node))}`,
    ledgerTable: `${quoteIdent(internal)}.ledger`,
    view: (view) => `${quoteIdent(name)}.${quoteIdent(view)}`,
    scopeTable: 'pg_temp.backfill_scope',
    catalogReads: [
      "SELECT attname, COALESCE(most_common_vals::text, histogram_bounds::text) AS vals FROM pg_stats WHERE tablename = 'daily__versions'",
      'SELECT COUNT(*) AS n FROM pg_catalog.pg_stats',
      'SELECT COUNT(*) AS n FROM "pg_catalog"."pg_class"',
      'SELECT COUNT(*) AS n FROM PG_STATISTIC',
      'SELECT n_live_tup FROM pg_stat_user_tables',
      'SELECT COUNT(*) AS n FROM information_schema.tables',
      'WITH pg_stats AS (SELECT 1 AS x) SELECT COUNT(*) AS n FROM pg_stats',
      'SELECT pg_stat_get_live_tuples(CAST({{versions}} AS regclass)) AS n',
      'SELECT pg_catalog.pg_total_relation_size({{ledger}}) AS n',
    ],
  };
  return { warehouse, url, raw, internal, cleanup: () => warehouse.close() };
}

async function execIn(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

warehouseSuite('postgres', fresh, { runaway: runaway('n') });

describe('postgres: what a rollback leaves stale downstream', () => {
  it('counts the downstream partitions whose published version read a version the rollback took off', async () => {
    const { warehouse, cleanup } = await fresh();
    try {
      await staleDownstreamCase(warehouse);
    } finally {
      await cleanup();
    }
  });
});

describe('postgres: spec SQL that never ends', () => {
  it('is stopped on the server at its deadline: it holds no connection and no lock after it', async () => {
    const { warehouse, cleanup } = await fresh();
    try {
      const tag = `runaway_${randomUUID().slice(0, 8)}`;
      const late = write('spin', 'k', { selects: [{ sql: runaway(tag), bindings: {} }], commitBy: Date.now() + 300 });
      expect(await rejection(settledWithin(warehouse.publish(late), 15_000))).toBeInstanceOf(CommitDeadlineError);
      const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, [tag]);
      expect(rows).toEqual([]);
    } finally {
      await cleanup();
    }
  }, 30_000);

  it("keeps a stricter statement_timeout of the workers' role: that stops it, long before the partition's time is up", async () => {
    const role = `bf_strict_${randomUUID().slice(0, 8)}`;
    roles.push(role);
    await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER PASSWORD 'worker'`);
    await admin.query(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${database} TO ${role}`);
    await admin.query(`ALTER ROLE ${role} SET statement_timeout = '1s'`);
    const url = new URL(urlFor(database));
    url.username = role;
    url.password = 'worker';
    // Its internal schema has the role's name, so the views go there too (search_path "$user").
    const warehouse = new PostgresWarehouse(url.toString(), { schema: role });
    try {
      const stopped = /stopped by the statement_timeout \(1000 ms\) of the workers' role, the database or the URL/;
      const timed = await rejection(settledWithin(warehouse.query(runaway('n'), {}, undefined, { deadline: Date.now() + 20_000 }), 10_000));
      expect(timed).toBeInstanceOf(CommitDeadlineError);
      expect(timed.message).toMatch(stopped);
      const untimed = await rejection(settledWithin(warehouse.query(runaway('n')), 10_000));
      expect(untimed.message).toMatch(stopped);
      // A statement of backfill's own in a transaction with a deadline (a publish's): the role's timeout stopped it, not the deadline.
      const { dialect } = warehouse as unknown as { dialect: Dialect };
      const own = await rejection(settledWithin(dialect.transaction((session) => session.all('SELECT pg_sleep(5)'), { deadline: Date.now() + 20_000 }), 10_000));
      expect(own).toBeInstanceOf(CommitDeadlineError);
      expect(own.message).toMatch(stopped);
    } finally {
      await warehouse.close();
    }
  }, 60_000);
});

describe('postgres: its own storage', () => {
  it('sets up once when several workers open a fresh warehouse at the same moment', async () => {
    // A fresh database and the default schema: each connection looked the schema up at connect
    // (search_path "$user"), so its catalogue cache says it is missing after another created it.
    const db = `backfill_wh_${randomUUID().slice(0, 8)}`;
    await admin.query(`CREATE DATABASE ${db}`);
    const workers = Array.from({ length: 4 }, () => new PostgresWarehouse(urlFor(db)));
    try {
      const outcomes = await Promise.allSettled(workers.map((w) => w.ledger({})));
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
      expect(new Set(await Promise.all(workers.map((w) => w.identity()))).size).toBe(1);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    }
  });

  it('keeps the ledger and versions in a schema of their own and the datasets as views on the search path', async () => {
    const { warehouse, url, cleanup } = await fresh();
    try {
      await warehouse.publish(write('orders', 'k', { rows: ORDERS }));
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query<{ table_schema: string; table_name: string; table_type: string }>(
        `SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_schema LIKE 't\\_%' ORDER BY 1, 2`,
      );
      const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
      expect(rows.filter((r) => r.table_schema.startsWith(schema)).map((r) => [r.table_schema.replace(schema, 'S'), r.table_name, r.table_type])).toEqual([
        ['S', 'orders', 'VIEW'],
        ['S_internal', 'leases', 'BASE TABLE'],
        ['S_internal', 'ledger', 'BASE TABLE'],
        ['S_internal', 'meta', 'BASE TABLE'],
        ['S_internal', 'orders__versions', 'BASE TABLE'],
        ['S_internal', 'partitions', 'BASE TABLE'],
        ['S_internal', 'rollbacks', 'BASE TABLE'],
        ['S_internal', 'signatures', 'BASE TABLE'],
      ]);
      expect((await client.query('SELECT COUNT(*)::int AS n FROM orders')).rows).toEqual([{ n: 3 }]);
      await client.end();
      expect(warehouse.location).not.toMatch(/backfill:backfill@/);
    } finally {
      await cleanup();
    }
  });

  it('publishes partitions of one node in parallel, and concurrent attempts of one partition publish it once', async () => {
    const { warehouse, cleanup } = await fresh();
    try {
      const days = Array.from({ length: 20 }, (_, i) => `2024-01-${String(i + 1).padStart(2, '0')}`);
      const published = await Promise.all(days.map((day) => warehouse.publish(write('events', day, { rows: [{ day, n: 1 }] }))));
      expect(published.every((p) => p.version === 1)).toBe(true);
      const attempts = await Promise.all([1, 2, 3, 4].map((attempt) => warehouse.publish(write('events', '2024-02-01', { rows: [{ day: 'x', n: attempt }], attempt }))));
      expect(attempts.filter((a) => !a.alreadyPublished)).toHaveLength(1);
      expect(new Set(attempts.map((a) => a.version))).toEqual(new Set([1]));
      const [row] = await warehouse.ledger({ node: 'events', partition: '2024-02-01' });
      expect(row).toMatchObject({ version: 1, executions: 4 });
    } finally {
      await cleanup();
    }
  });

  it('widens a column whose values outgrow its type, keeping the view readable', async () => {
    const { warehouse, cleanup } = await fresh();
    try {
      await warehouse.publish(write('m', 'a', { rows: [{ v: 1 }] }));
      await warehouse.publish(write('m', 'b', { rows: [{ v: 2.5 }] }));
      await warehouse.publish(write('m', 'c', { rows: [{ v: 'text now' }] }));
      expect(await warehouse.query('SELECT v FROM m ORDER BY v')).toEqual([{ v: '1' }, { v: '2.5' }, { v: 'text now' }]);
    } finally {
      await cleanup();
    }
  });

  it("probes a SQL node's columns again once an upstream column widens, so a value is never rounded to the old type", async () => {
    const { warehouse, cleanup } = await fresh();
    try {
      const doubled = (partition: string) => write('doubled', partition, { selects: [{ sql: 'SELECT n * 2 AS m FROM src', bindings: {} }], inputs: [{ node: 'src', from: partition, to: partition }] });
      await warehouse.publish(write('src', 'a', { rows: [{ n: 1 }] }));
      await warehouse.publish(doubled('a'));
      await warehouse.publish(doubled('a'));
      // The same SQL over the same upstream types: the columns the first publish probed.
      await warehouse.publish(write('src', 'b', { rows: [{ n: 1.25 }] }));
      await warehouse.publish(doubled('b'));
      expect(await warehouse.query('SELECT m FROM doubled ORDER BY m')).toEqual([{ m: 2 }, { m: 2.5 }]);
    } finally {
      await cleanup();
    }
  });

  it('stores booleans as booleans and objects as JSON text', async () => {
    const { warehouse, cleanup } = await fresh();
    try {
      await warehouse.publish(write('t', 'k', { rows: [{ flag: true, meta: { a: [1] } }] }));
      expect(await warehouse.query('SELECT flag, meta FROM t')).toEqual([{ flag: true, meta: '{"a":[1]}' }]);
    } finally {
      await cleanup();
    }
  });

  it('upgrades a ledger from before warnings, spec hashes, costs and rollbacks in place', async () => {
    const { warehouse, url, internal, cleanup } = await fresh();
    try {
      await execIn(
        url,
        `${olderLedger(internal)}
         INSERT INTO ${internal}.ledger VALUES ('orders', 'k', 1, 'published', 'bf-0', 'r0', 'w0', 1, 'c0', 's0', 'sql', '{}', 'code-0', '[]', 1, 1,
           '2024-01-01T00:00:00Z', '2024-01-01T00:00:01Z', 1000, NULL, NULL);`,
      );
      expect(await warehouse.ledger({ node: 'orders' })).toEqual([expect.objectContaining({ version: 1, warnings: [], specHash: null, cost: null, checksum: 'c0' })]);
      expect(await warehouse.rollbacks({})).toEqual([]);
      await warehouse.publish(write('orders', 'k2', { rows: [{ a: 1 }], specHash: 'abc', cost: 2.5, checks: [{ type: 'row_count', max: 0, severity: 'warn' }] }));
      expect((await warehouse.ledger({ node: 'orders', partition: 'k2' }))[0]).toMatchObject({ specHash: 'abc', cost: 2.5, warnings: ['row_count: 1 rows, expected at most 0'] });
      const again = new PostgresWarehouse(url, { schema: internal });
      expect(await again.ledger({ node: 'orders' })).toHaveLength(2);
      await again.close();
    } finally {
      await cleanup();
    }
  });

  it('never shows a password, in its location or its errors: a refused one, one with unencoded @ / :, an unreachable server', async () => {
    const server = new URL(SERVER);
    const wrong = new URL(SERVER);
    wrong.password = 'Wr0ng-s3cret';
    const cases: Array<[url: string, password: string]> = [
      [wrong.toString(), 'Wr0ng-s3cret'],
      [`postgres://${server.username}:Pz8k@Qm3v/Rt6w:Ys2n@${server.host}/postgres`, 'Pz8k@Qm3v/Rt6w:Ys2n'],
      ['postgres://someone:Hj4d/Kl9@Mn2@127.0.0.1:1/nowhere', 'Hj4d/Kl9@Mn2'],
    ];
    for (const [url, password] of cases) {
      const warehouse = new PostgresWarehouse(url);
      for (const part of [password, ...password.split(/[@/:]/).filter((p) => p.length > 1)]) expect(warehouse.location, url).not.toContain(part);
      const error = await rejection(warehouse.publish(write('orders', 'k', { rows: ORDERS })));
      for (const text of [error.message, String(error.stack), JSON.stringify(error)]) {
        for (const part of [password, ...password.split(/[@/:]/).filter((p) => p.length > 1)]) expect(text, url).not.toContain(part);
      }
      expect(error.message).toContain(warehouse.location);
      await warehouse.close();
    }
  });

  it('refuses spec SQL that calls a function acting outside the query, or hides SQL in a string, before it runs', async () => {
    const { warehouse, raw, cleanup } = await fresh();
    try {
      await warehouse.publish(write('orders', 'k', { rows: ORDERS }));
      const sqls = [
        "SELECT set_config('search_path', 'nowhere', false) AS x",
        'SELECT pg_advisory_lock(42) AS x',
        `SELECT * FROM ts_stat('SELECT to_tsvector(node) FROM ${raw.ledgerTable.replaceAll("'", "''")}')`,
        `SELECT query_to_xml('SELECT * FROM ${raw.ledgerTable.replaceAll("'", "''")}', true, false, '') AS x`,
        'SELECT 1 AS x FOR UPDATE',
        // The server's files, which a superuser role reads.
        "SELECT split_part(pg_read_file('/etc/passwd'), E'\\n', 1) AS line",
        "SELECT COUNT(*) AS n FROM pg_catalog.pg_ls_dir('.') AS f",
        "SELECT (pg_stat_file('postgresql.conf')).size AS n",
        "SELECT pg_logical_emit_message(true, 'backfill', 'x') AS lsn",
        'SELECT PG_TERMINATE_BACKEND(pg_backend_pid()) AS x',
      ];
      for (const sql of sqls) {
        const error = await rejection(warehouse.publish(write('bad', 'k', { selects: [{ sql, bindings: {} }] })));
        expect(error, sql).toBeInstanceOf(SqlError);
        expect(error.message, sql).toMatch(/may not/);
        expect(await rejection(warehouse.query(sql)), sql).toBeInstanceOf(SqlError);
      }
      expect(await warehouse.query('SELECT current_setting(\'search_path\') AS p')).not.toEqual([{ p: 'nowhere' }]);
    } finally {
      await cleanup();
    }
  });

  it('refuses every function PostgreSQL keeps from PUBLIC, and those that change the server', async () => {
    const { rows } = await admin.query<{ name: string }>(
      `SELECT DISTINCT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'pg_catalog' AND p.proacl IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')`,
    );
    expect(rows.length).toBeGreaterThan(30);
    const changing = ['pg_reload_conf', 'pg_rotate_logfile', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot', 'pg_logical_slot_get_changes', 'pg_replication_slot_advance', 'brin_summarize_range', 'pg_cancel_backend', 'lo_import'];
    expect([...rows.map((r) => r.name), ...changing].filter((name) => !actsOutside(name))).toEqual([]);
    expect(['count', 'pg_backend_pid', 'now', 'coalesce', 'pg_get_viewdef'].filter(actsOutside)).toEqual([]);
  });

  it('warns once at start-up when its role is a superuser, and not with a role made as docker-compose.yml makes it', async () => {
    const { rows } = await admin.query<{ superuser: boolean }>('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
    expect(rows, 'the tests connect as a superuser').toEqual([{ superuser: true }]);
    const use = async (url: string, schema: string) => {
      const warnings: string[] = [];
      const warehouse = new PostgresWarehouse(url, { schema, warn: (message) => warnings.push(message) });
      try {
        await warehouse.publish(write('orders', 'k', { rows: ORDERS }));
        expect(await warehouse.query('SELECT COUNT(*) AS n FROM orders')).toEqual([{ n: 3 }]);
        await warehouse.publish(write('orders', 'k2', { rows: ORDERS }));
      } finally {
        await warehouse.close();
      }
      return warnings;
    };
    const schema = `su_${randomUUID().slice(0, 8)}`;
    await execIn(urlFor(database), `CREATE SCHEMA ${schema}`);
    expect(await use(urlFor(database, schema), `${schema}_internal`)).toEqual([expect.stringMatching(/connects as \w+, a superuser\..*Connect the workers with a role that is not superuser \(docs\/deploying.md/)]);

    // deploy/compose/warehouse-role.sh: CONNECT, TEMPORARY and CREATE on the database; the views go in the schema of the role's name.
    const role = `bf_worker_${randomUUID().slice(0, 8)}`;
    roles.push(role);
    await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER PASSWORD 'worker'`);
    await admin.query(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${database} TO ${role}`);
    const url = new URL(urlFor(database));
    url.username = role;
    url.password = 'worker';
    expect(await use(url.toString(), role)).toEqual([]);

    // The same grants to a role whose name is no schema, its internal one named otherwise: the views would go in public, where
    // PostgreSQL 15 lets no such role create. Refused as the warehouse opens, naming the grant (every partition failed with
    // "permission denied for schema public").
    const plain = `bf_plain_${randomUUID().slice(0, 8)}`;
    roles.push(plain);
    await admin.query(`CREATE ROLE ${plain} LOGIN NOSUPERUSER PASSWORD 'worker'`);
    await admin.query(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${database} TO ${plain}`);
    url.username = plain;
    const other = new PostgresWarehouse(url.toString(), { schema: `${plain}_internal` });
    try {
      const refused = await other.publish(write('orders', 'k', { rows: ORDERS })).then(() => undefined, (error: unknown) => error as Error);
      expect(refused?.message).toMatch(new RegExp(`the role ${plain} may not create the datasets' views in schema public .*GRANT USAGE, CREATE ON SCHEMA "?public"? TO "?${plain}"?, or set search_path in the URL`));
    } finally {
      await other.close();
    }
  });

  it("a view of yours that calls the server's files or large objects: the door does not look at its calls, the server refuses them to the workers' role (not superuser), in a query and in a partition", async () => {
    const role = `bf_viewer_${randomUUID().slice(0, 8)}`;
    roles.push(role);
    await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER PASSWORD 'worker'`);
    await admin.query(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${database} TO ${role}`);
    // The views an operator made, as a superuser, in the schema of the datasets' views.
    await execIn(urlFor(database), `CREATE SCHEMA ${role} AUTHORIZATION ${role}`);
    const views = { v_file: "SELECT pg_read_file('PG_VERSION') AS x", v_large_object: "SELECT CAST(lo_import('PG_VERSION') AS text) AS x" };
    for (const [name, sql] of Object.entries(views)) await execIn(urlFor(database), `CREATE VIEW ${role}.${name} AS ${sql}; GRANT SELECT ON ${role}.${name} TO ${role}`);
    const largeObjects = async () => (await admin.query<{ n: string }>('SELECT COUNT(*) AS n FROM pg_largeobject_metadata')).rows[0]!.n;
    const before = await largeObjects();
    const url = new URL(urlFor(database));
    url.username = role;
    url.password = 'worker';
    const warehouse = new PostgresWarehouse(url.toString(), { schema: `${role}_internal` });
    try {
      await warehouse.publish(write('up', 'k', { rows: [{ a: 1 }] }));
      for (const [name, fn] of [['v_file', 'pg_read_file'], ['v_large_object', 'lo_import']]) {
        const sql = `SELECT x FROM ${name}`;
        const read = await rejection(warehouse.query(sql));
        expect(read, sql).toBeInstanceOf(SqlError);
        expect(read.message, sql).toMatch(new RegExp(`permission denied for function ${fn}`));
        const inPartition = await rejection(warehouse.publish(write('reader', 'k', { selects: [{ sql, bindings: {} }], inputs: [{ node: 'up', from: 'k', to: 'k' }] })));
        expect(inPartition.message, sql).toMatch(new RegExp(`permission denied for function ${fn}`));
      }
      expect(await warehouse.ledger({ node: 'reader' })).toEqual([]);
      expect(await largeObjects()).toBe(before);
    } finally {
      await warehouse.close();
    }
  });

  it('starts a publish with its own function, which runs only as the statement backfill sends', async () => {
    const { warehouse, url, internal, cleanup } = await fresh();
    try {
      await warehouse.publish(write('orders', 'k', { rows: ORDERS }));
      expect(START_FUNCTION).toBe('publish_start_v2');
      const call = `SELECT ${quoteIdent(internal)}.${START_FUNCTION}('{"node":"orders","partition":"k","runKey":"x","inputs":[]}'::jsonb) AS start`;
      // From spec SQL: refused before it runs, in a publish and in a query.
      const error = await rejection(warehouse.publish(write('bad', 'k', { selects: [{ sql: call, bindings: {} }] })));
      expect(error).toBeInstanceOf(SqlError);
      expect(error.message).toMatch(/may not call publish_start_v2\(\)/);
      expect(await rejection(warehouse.query(call))).toBeInstanceOf(SqlError);
      // From any other statement, as the same user: the function itself refuses.
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const direct = await rejection(client.query(call));
        expect(direct.message).toMatch(/publish_start_v2\(\) is backfill's own/);
        expect((direct as Error & { code?: string }).code).toBe('42501');
        const { rows } = await client.query(
          `SELECT has_function_privilege('public', '${internal}.${START_FUNCTION}(jsonb)', 'EXECUTE') AS public_may, p.prosecdef AS definer,
             to_regprocedure('${internal}.publish_start_v1(jsonb)') IS NULL AS no_v1
           FROM pg_proc p WHERE p.oid = '${internal}.${START_FUNCTION}(jsonb)'::regprocedure`,
        );
        // Only this release's function is made: an earlier release's stays for its workers where it made one.
        expect(rows).toEqual([{ public_may: false, definer: false, no_v1: true }]);
      } finally {
        await client.end();
      }
    } finally {
      await cleanup();
    }
  });

  it('takes its schema and pool size from the URL, and refuses settings it does not know', async () => {
    const name = `u_${randomUUID().slice(0, 8)}`;
    const base = new URL(urlFor(database, 'public'));
    base.searchParams.set('backfill_schema', name);
    base.searchParams.set('backfill_pool_size', '2');
    const warehouse = new PostgresWarehouse(base.toString());
    try {
      const published = await Promise.all(['a', 'b', 'c', 'd'].map((k) => warehouse.publish(write('pooled', k, { rows: [{ k }] }))));
      expect(published.map((p) => p.version)).toEqual([1, 1, 1, 1]);
      const client = new pg.Client({ connectionString: urlFor(database) });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT COUNT(*)::int AS n FROM ${quoteIdent(name)}.ledger`);
        expect(rows).toEqual([{ n: 4 }]);
        const pool = await client.query(`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'backfill'`, [database]);
        expect(pool.rows[0].n).toBeLessThanOrEqual(2);
      } finally {
        await client.query(`DROP SCHEMA ${quoteIdent(name)} CASCADE`);
        await client.query('DROP VIEW IF EXISTS public.pooled');
        await client.end();
      }
    } finally {
      await warehouse.close();
    }
    const typo = new URL(urlFor(database));
    typo.searchParams.set('backfill_shema', 'x');
    expect(() => new PostgresWarehouse(typo.toString())).toThrow(/unknown setting backfill_shema: backfill reads backfill_schema and backfill_pool_size/);
  });

  it("refuses, inside a partition, the statistics ANALYZE gathered of every partition, also through a view of yours", async () => {
    const { warehouse, raw, cleanup } = await fresh();
    try {
      for (const day of ['2024-01-01', '2024-01-02', '2024-01-03']) await warehouse.publish(write('daily', day, { rows: [{ day, revenue: 100 + Number(day.slice(-2)) }] }));
      // What autovacuum does by itself once a table has changed enough.
      await raw.exec(`ANALYZE ${raw.versionsTable('daily')}; ANALYZE ${raw.ledgerTable}`);
      await raw.exec(`CREATE VIEW ${raw.view('my_stats')} AS SELECT tablename, histogram_bounds::text AS vals FROM pg_stats`);
      const sql = "SELECT vals FROM my_stats WHERE tablename = 'daily__versions'";
      expect(await warehouse.query(sql)).not.toEqual([]);
      const inputs = [{ node: 'daily', from: '2024-01-02', to: '2024-01-02' }];
      const error = await rejection(warehouse.query(sql, {}, await warehouse.pin(inputs)));
      expect(error.message).toMatch(/my_stats, which reads the database's catalog \(pg_catalog.pg_stats\).*plain name/);
    } finally {
      await cleanup();
    }
  });

  it('refuses, inside a partition, a view of yours over catalog tables PostgreSQL records no dependency on (pinned: pg_class, pg_statistic)', async () => {
    const { warehouse, raw, cleanup } = await fresh();
    try {
      for (const day of ['2024-01-01', '2024-01-02', '2024-01-03']) await warehouse.publish(write('daily', day, { rows: [{ day, revenue: 100 + Number(day.slice(-2)) }] }));
      await raw.exec(`ANALYZE ${raw.versionsTable('daily')}`);
      await raw.exec(
        `CREATE VIEW ${raw.view('my_sizes')} AS SELECT relname, reltuples FROM pg_class;
         CREATE VIEW ${raw.view('my_values')} AS SELECT s.stavalues1::text AS vals FROM pg_statistic s;
         CREATE VIEW ${raw.view('my_nested')} AS SELECT * FROM (SELECT relname FROM ${raw.view('my_sizes')}) AS n WHERE EXISTS (SELECT 1 FROM ${raw.view('my_values')})`,
      );
      const pinned = await warehouse.pin([{ node: 'daily', from: '2024-01-02', to: '2024-01-02' }]);
      const reads: Array<[string, RegExp]> = [
        ["SELECT reltuples FROM my_sizes WHERE relname = 'daily__versions'", /my_sizes, which reads the database's catalog \(pg_catalog.pg_class\)/],
        ['SELECT vals FROM my_values', /my_values, which reads the database's catalog \(pg_catalog.pg_statistic\)/],
        ['SELECT relname FROM my_nested', /my_nested, which reads the database's catalog \(pg_catalog.pg_(class|statistic)\)/],
      ];
      for (const [sql, refusal] of reads) {
        expect(await warehouse.query(sql), sql).not.toEqual([]);
        expect((await rejection(warehouse.query(sql, {}, pinned))).message, sql).toMatch(refusal);
      }
    } finally {
      await cleanup();
    }
  });

  it('keeps its identity across connections, and refuses an upstream named by its schema, quoted or not', async () => {
    const { warehouse, url, internal, cleanup } = await fresh();
    try {
      const again = new PostgresWarehouse(url, { schema: internal });
      expect(await again.identity()).toBe(await warehouse.identity());
      await again.close();
      for (const day of ['2024-01-01', '2024-01-02', '2024-01-03']) await warehouse.publish(write('daily', day, { rows: [{ day }] }));
      const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
      const inputs = [{ node: 'daily', from: '2024-01-01', to: '2024-01-01' }];
      for (const name of [`${schema}.daily`, `"${schema}"."daily"`, `${schema}."daily"`, `${internal}.daily__versions`, 'public.daily']) {
        const error = await rejection(warehouse.publish(write('rolling', 'k', { selects: [{ sql: `SELECT COUNT(*) AS n FROM ${name}`, bindings: {} }], inputs })));
        expect(error.message, name).toMatch(/plain name|does not exist/);
      }
      expect(await warehouse.ledger({ node: 'rolling' })).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('says which URL it could not reach, without the password', async () => {
    const warehouse = new PostgresWarehouse('postgres://someone:secret@127.0.0.1:1/nowhere');
    const error = await warehouse.ledger({}).catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/cannot connect to the PostgreSQL warehouse postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    expect(String(error)).not.toMatch(/secret/);
    await warehouse.close();
  });
});

describe('postgres: what plan refuses of the names spec SQL reads, the partition refuses or reads wrongly', () => {
  it("a dataset or backfill's table named otherwise than by a dataset's plain name: plan refuses it (PostgreSQL's schemas aside, whose views' schema only the warehouse knows), and the partition is refused when it runs", async () => {
    // backfill's tables in the schema of its default name, the views in a schema of their own.
    const views = `t_${randomUUID().slice(0, 8)}`;
    await execIn(urlFor(database), `CREATE SCHEMA ${views}`);
    const wh = new PostgresWarehouse(urlFor(database, views), { schema: 'backfill', warn: () => undefined });
    try {
      for (const day of ['2024-01-01', '2024-01-02']) await wh.publish(write('daily', day, { rows: [{ day, revenue: 10 }] }));
      const inputs = [{ node: 'daily', from: '2024-01-02', to: '2024-01-02' }];
      const names = [`${views}.daily`, `"${views}"."daily"`, 'backfill.daily__versions', '"backfill"."daily__versions"', 'backfill.ledger', 'backfill.partitions', 'backfill.leases', 'public.daily'];
      for (const [i, name] of names.entries()) {
        const sql = `SELECT COUNT(*) AS n FROM ${name}`;
        // A schema other than SQLite's may be a source table's (raw.orders, or public.orders beside views kept in a schema
        // of their own): plan lets it through, and the warehouse, which knows the schema of its views, refuses it when the partition runs.
        if (name.includes(views) || name.startsWith('public.')) expect(plannedReading(sql), name).not.toThrow();
        else expect(thrownBackfillError(plannedReading(sql)).code, name).toBe('invalid_spec');
        const error = await rejection(wh.publish(write('rolling', '2024-01-02', { backfillId: `bf-${i}`, runKey: `run-${i}`, selects: [{ sql, bindings: {} }], inputs })));
        expect(error, name).toBeInstanceOf(SqlError);
      }
      expect(await wh.ledger({ node: 'rolling' })).toEqual([]);
      expect(plannedReading('SELECT COUNT(*) AS n FROM daily')).not.toThrow();
      await wh.publish(write('rolling', '2024-01-02', { selects: [{ sql: 'SELECT COUNT(*) AS n FROM daily', bindings: {} }], inputs }));
      expect(await wh.query('SELECT n FROM rolling')).toEqual([{ n: 1 }]);
    } finally {
      await wh.close();
    }
  });
});

describe('postgres: spec SQL parameters beside slices, E strings and comments', () => {
  it('binds :i as a subscript and :x, and leaves a slice arr[lo:hi], a colon in an E string, a dollar-quoted body and comments alone', async () => {
    const { warehouse: wh, cleanup } = await fresh();
    try {
      const sql =
        "SELECT array_to_string(a[lo:hi], ',') AS mid, a[:i] AS at_i, E'it\\'s :x' AS e, :x AS x, $q$ :y ; $q$ AS d /* ; :w */ " +
        'FROM (SELECT ARRAY[10, 20, 30] AS a, 2 AS lo, 3 AS hi) s; -- :z';
      await wh.publish(write('t', 'k', { selects: [{ sql, bindings: { i: 2, x: 'X' } }] }));
      expect(await wh.query('SELECT mid, at_i, e, x, d FROM t')).toEqual([{ mid: '20,30', at_i: 20, e: "it's :x", x: 'X', d: ' :y ; ' }]);
    } finally {
      await cleanup();
    }
  });
});

describe('the same data gives the same checksums on SQLite and PostgreSQL', () => {
  /** Publishes each write on a new SQLite and a new PostgreSQL warehouse in turn: equal checksums, row counts and schema hashes; then `after`. */
  async function publishOnBoth(writes: readonly PartitionWrite[], after: (raw: RawAccess) => Promise<void> = async () => undefined): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-parity-'));
    const sqlite = new SqliteWarehouse(join(dir, 'warehouse.db'));
    const { warehouse: postgres, raw, cleanup } = await fresh();
    try {
      for (const w of writes) {
        const a = await sqlite.publish(w);
        const b = await postgres.publish(w);
        expect(b.checksum, `${w.node} ${w.partition}`).toBe(a.checksum);
        expect(b.rowCount).toBe(a.rowCount);
        expect(b.schemaHash).toBe(a.schemaHash);
      }
      await after(raw);
    } finally {
      await sqlite.close();
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('rows a transform returns arrive as written, whatever their text holds, on a new dataset, a widened one and one that fits', async () => {
    // What an array literal must escape or could mistake (quotes, backslashes, braces, commas,
    // NULL as text, blanks), and numbers (NaN, which SQLite cannot hold, too), booleans, nulls,
    // objects and dates beside them.
    const awkward = ['say "hi"', 'back\\slash', '{a,b}', 'NULL', '', ' padded ', 'line\nbreak\ttab', 'ünïcode ✓ 😀', "it's", ',', '\\"'];
    const rows = awkward.map((text, i) => ({ id: i, text, n: [0.1, -0, 1e21, 2 ** 53 - 1, Number.POSITIVE_INFINITY, Number.NaN][i % 6]!, flag: i % 2 === 0, none: null, obj: { i, text } }));
    const writes: PartitionWrite[] = [
      write('awkward', 'k1', { rows }),
      // `id` widens from bigint to double precision.
      write('awkward', 'k2', { rows: [{ id: 1.5, text: '}', n: 1, flag: true, none: null, obj: [] }] }),
      write('awkward', 'k3', { rows: [{ id: 7, text: '"', n: -1, flag: false, none: 'now text', obj: 'plain', at: new Date(Date.UTC(2024, 1, 29)) }] }),
      write('awkward', 'k4', { rows: rows.slice(0, 3) }),
      // Rows with no columns at all.
      write('blank', 'k1', { rows: [{}, {}] }),
    ];
    await publishOnBoth(writes, async (raw) => {
      const stored = await raw.rows(`SELECT text FROM ${raw.view('awkward')}`);
      expect(stored.map((r) => r.text).sort()).toEqual([...awkward, '}', '"', ...awkward.slice(0, 3)].sort());
    });
  });

  it("a NaN that spec SQL computes is stored as NULL, as SQLite stores it (and as a transform's NaN is)", async () => {
    // Infinity minus itself: NaN on both engines, which SQLite cannot hold.
    await publishOnBoth(
      [
        write('edges', 'k', { rows: [{ id: 1, n: Number.POSITIVE_INFINITY }, { id: 2, n: 2.5 }] }),
        write('spread', 'k', { selects: [{ sql: 'SELECT id, n - n AS d, CAST(n - n AS NUMERIC) AS e FROM edges', bindings: {} }], inputs: [{ node: 'edges', from: 'k', to: 'k' }] }),
      ],
      async (raw) => {
        const stored = await raw.rows(`SELECT id, d, e FROM ${raw.view('spread')} ORDER BY id`);
        expect(stored).toEqual([
          { id: 1, d: null, e: null },
          { id: 2, d: 0, e: 0 },
        ]);
      },
    );
  });

  it('rows from a transform, SELECT results, aggregates, booleans, nulls and text', async () => {
    await publishOnBoth([
      write('orders', '2024-01-01', { rows: [...ORDERS, { order_id: 4, country: 'NL', amount: 0.1 + 0.2, paid: true, note: null }] }),
      write('orders', '2024-01-02', { rows: [{ order_id: 5, country: 'DE', amount: -3, paid: false, note: 'ünïcode ✓' }] }),
      write('totals', '2024-01-01', {
        selects: [
          {
            sql: 'SELECT country, COUNT(*) AS orders, SUM(order_id) AS ids, MAX(amount) AS top, :label AS label, :day AS day FROM orders GROUP BY country',
            bindings: { label: 'x', day: '2024-01-01' },
          },
        ],
        inputs: [{ node: 'orders', from: '2024-01-01', to: '2024-01-02' }],
      }),
    ]);
  });
});

describe('postgres: the readers (lineage, diff, report, rollback --dry-run, --only-changed) set nothing up', () => {
  /** A database of their own, where PUBLIC may not connect, make temporary tables or create in public. */
  const readers = `backfill_rd_${randomUUID().slice(0, 8)}`;
  const reader = `bf_reader_${randomUUID().slice(0, 8)}`;
  /** `url` as `role` (password `password`). */
  const as = (url: string, role: string, password: string): string => {
    const u = new URL(url);
    u.username = role;
    u.password = password;
    return u.toString();
  };
  const schemas = async (url: string): Promise<string[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<{ name: string }>("SELECT nspname AS name FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1")).rows.map((r) => r.name);
    } finally {
      await client.end();
    }
  };
  beforeAll(async () => {
    await admin.query(`CREATE DATABASE ${readers}`);
    await admin.query(`REVOKE ALL ON DATABASE ${readers} FROM PUBLIC`);
    await execIn(urlFor(readers), 'REVOKE ALL ON SCHEMA public FROM PUBLIC');
    // The workers (this superuser) run a backfill there: a published version, and a staged run.
    const workers = new PostgresWarehouse(urlFor(readers), { warn: () => undefined });
    try {
      await writeLedger(workers);
    } finally {
      await workers.close();
    }
    roles.push(reader);
    await admin.query(`CREATE ROLE ${reader} LOGIN NOSUPERUSER PASSWORD 'reader'`);
    // docs/deploying.md, "A reader's database role".
    await execIn(urlFor(readers), `GRANT CONNECT ON DATABASE ${readers} TO ${reader}; GRANT USAGE ON SCHEMA backfill TO ${reader}; GRANT SELECT ON ALL TABLES IN SCHEMA backfill TO ${reader}`);
  });
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${readers} WITH (FORCE)`);
  });

  it('a role that may only connect, use the schema and SELECT its tables runs lineage and every read of diff, rollback --dry-run and report', async () => {
    const url = as(urlFor(readers), reader, 'reader');
    await readersReadAt(url);
    const report = await openLedgerIfThere(url);
    expect(report).not.toBeNull();
    await report?.close();
  });

  it('a role that may not read the ledger: says what to grant', async () => {
    const stranger = `bf_stranger_${randomUUID().slice(0, 8)}`;
    roles.push(stranger);
    await admin.query(`CREATE ROLE ${stranger} LOGIN NOSUPERUSER PASSWORD 'stranger'`);
    await execIn(urlFor(readers), `GRANT CONNECT ON DATABASE ${readers} TO ${stranger}; GRANT USAGE ON SCHEMA backfill TO ${stranger}`);
    const lineage = await runCli('lineage', 'orders', '2024-03-01', '--warehouse', as(urlFor(readers), stranger, 'stranger'), '--json');
    expect(lineage.code).toBe(EXIT.error);
    expect(JSON.parse(lineage.stdout).error).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(/cannot read the ledger in .*: permission denied for table \w+\. A reader's role needs CONNECT on the database, USAGE on the schema backfill and SELECT on its tables .*docs\/deploying.md/),
    });
  });

  it('a database without a backfill ledger: says so, naming it, and leaves it without one', async () => {
    const empty = `backfill_rd_empty_${randomUUID().slice(0, 8)}`;
    await admin.query(`CREATE DATABASE ${empty}`);
    try {
      const url = urlFor(empty);
      const before = await schemas(url);
      const lineage = await runCli('lineage', 'orders', '2024-03-01', '--warehouse', url, '--json');
      expect(lineage.code).toBe(EXIT.error);
      const error = JSON.parse(lineage.stdout).error as { code: string; message: string; path: string };
      expect(error).toMatchObject({ code: 'invalid_argument', path: 'warehouse' });
      expect(error.message).toContain(`no backfill ledger in postgres://backfill:***@${new URL(SERVER).host}/${empty}`);
      expect(error.message).toMatch(/Check --warehouse or BACKFILL_WAREHOUSE \(and backfill_schema in a PostgreSQL URL\)/);
      const diff = await openExistingWarehouse(url, 'diff');
      try {
        await expect(diff.diffStaged({ backfillId: 'bf-staged', runKey: 'run-staged' })).rejects.toThrow(/no backfill ledger in/);
      } finally {
        await diff.close();
      }
      // report and plan --estimate go on without a ledger.
      expect(await openLedgerIfThere(url)).toBeNull();
      expect(await schemas(url)).toEqual(before);
      expect(before).not.toContain('backfill');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${empty} WITH (FORCE)`);
    }
  });

  it('a ledger of an older layout: says the workers must run first, and adds nothing to it', async () => {
    const schema = `old_${randomUUID().slice(0, 8)}`;
    await execIn(
      urlFor(readers),
      `${olderLedger(schema)}
       GRANT USAGE ON SCHEMA ${schema} TO ${reader}; GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${reader}`,
    );
    const url = `${as(urlFor(readers), reader, 'reader')}?backfill_schema=${schema}`;
    const lineage = await runCli('lineage', 'orders', '2024-03-01', '--warehouse', url, '--json');
    expect(lineage.code).toBe(EXIT.error);
    expect(JSON.parse(lineage.stdout).error.message).toMatch(
      /is of an older layout \(it lacks ledger\.warnings, .*ledger\.version_kinds, table partitions, table rollbacks, table meta, table leases\).*start a worker of this release on this warehouse once/,
    );
    const client = new pg.Client({ connectionString: urlFor(readers) });
    await client.connect();
    try {
      const tables = await client.query<{ name: string }>('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1', [schema]);
      expect(tables.rows).toEqual([{ name: 'ledger' }]);
      const columns = await client.query('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, 'ledger']);
      expect(columns.rows).toHaveLength(21);
    } finally {
      await client.end();
    }
  });
});
