/** The `backfill` command line as a user runs it: a separate process, real server, real files. */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { SEARCH_ATTRIBUTES, unregisteredAttribute } from '../../client/search-attributes.ts';
import { startDevServer, type DevServer } from '../../host/dev-server.ts';
import { BACKFILL_ID } from '../../workflows/definitions.ts';
import { address, connectClient, scratch, startTestWorker, uniqueQueue, waitFor, workerProcess, type TestWorker } from './helpers.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/backfill.js');
const EXAMPLE = join(import.meta.dirname, '../../examples/shop/backfill.yaml');

type Result = { code: number; stdout: string; stderr: string; json: any };

async function backfill(args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run('node', [BIN, ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: address(), NO_COLOR: '1', ...env },
      timeout: 180_000,
    });
    return { code: 0, stdout, stderr, json: args.includes('--json') ? JSON.parse(stdout) : undefined };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    let json: unknown;
    try {
      json = JSON.parse(e.stdout);
    } catch {
      json = undefined;
    }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, json };
  }
}

function writeSpec(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

describe('backfill plan', () => {
  it('prints nodes, partition counts, critical path and width of the example', async () => {
    const result = await backfill(['plan', EXAMPLE, '--json']);
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ name: 'shop', totalPartitions: 1528, criticalPathLength: 4, maxWidth: 418 });
    const nodes = Object.fromEntries(result.json.nodes.map((n: { id: string; partitions: number; grain: string }) => [n.id, n]));
    expect(nodes.orders_raw).toMatchObject({ grain: 'day', partitions: 366, dependsOn: [] });
    expect(nodes.weekly_revenue).toMatchObject({ grain: 'week', partitions: 52, dependsOn: [{ node: 'daily_revenue', mapping: 'window' }] });
    expect(nodes.revenue_7d.dependsOn).toEqual([{ node: 'daily_revenue', mapping: { lag: { from: -6, to: 0 } } }]);
    expect(nodes.monthly_active_customers).toMatchObject({ grain: 'month', partitions: 12 });
  });

  it('narrows the plan to --from/--to', async () => {
    const result = await backfill(['plan', EXAMPLE, '--from', '2024-03-10', '--to', '2024-03-20', '--json']);
    expect(result.code).toBe(0);
    const nodes = Object.fromEntries(result.json.nodes.map((n: { id: string; partitions: number }) => [n.id, n.partitions]));
    expect(nodes).toMatchObject({ orders_raw: 10, weekly_revenue: 3, monthly_active_customers: 1 });
  });

  const base = `name: bad\npartitions: { grain: day, start: 2024-01-01, end: 2024-02-01 }\n`;
  const cases: Array<[string, string, string, RegExp]> = [
    ['a cycle', `${base}nodes:\n  - { id: a, transform: noop, dependsOn: [c] }\n  - { id: b, transform: noop, dependsOn: [a] }\n  - { id: c, transform: noop, dependsOn: [b] }\n`, 'cycle', /cycle a → c → b → a/],
    ['an unknown dependency', `${base}nodes:\n  - { id: a, transform: noop }\n  - { id: b, transform: noop, dependsOn: [nope] }\n`, 'unknown_node', /nodes\[1\]\.dependsOn\[0\].*'nope' is not a node/],
    ['an unknown transform', `${base}nodes:\n  - { id: a, transform: sqll }\n`, 'unknown_transform', /nodes\[0\]\.transform.*'sqll' is not a registered transform/],
    ['a bad date', `name: bad\npartitions: { grain: day, start: 2024-02-30, end: 2024-03-01 }\nnodes:\n  - { id: a, transform: noop }\n`, 'invalid_date', /partitions\.start.*not a valid UTC date/],
    [
      'SQL that reads a node it does not depend on',
      `${base}nodes:\n  - { id: orders_raw, transform: noop }\n  - { id: orders_clean, dependsOn: [orders_raw], sql: 'SELECT * FROM orders_raw' }\n  - id: daily_revenue\n    dependsOn: [orders_raw]\n    sql: |\n      SELECT COUNT(*) AS orders -- reads orders_clean, not declared\n      FROM orders_clean\n`,
      'invalid_spec',
      /nodes\[2\]\.sql: daily_revenue's SQL reads orders_clean, a node of this spec that daily_revenue does not depend on: .*Add it to dependsOn \(with the mapping of the partitions it reads\), e\.g\. dependsOn: \[orders_raw, orders_clean\]/,
    ],
    [
      'SQL that names a node with a schema',
      `${base}nodes:\n  - { id: orders_raw, transform: noop }\n  - { id: orders_clean, dependsOn: [orders_raw], sql: 'SELECT * FROM main.orders_raw' }\n`,
      'invalid_spec',
      /nodes\[1\]\.sql: orders_clean's SQL reads main\.orders_raw, the node orders_raw named with a schema, which the warehouses refuse inside a partition: .*Read it by its plain name, FROM orders_raw, which shows just the partitions this one maps to/,
    ],
    [
      'SQL that reads its own dataset',
      `${base}nodes:\n  - { id: orders_raw, transform: noop }\n  - { id: orders_clean, dependsOn: [orders_raw], sql: 'SELECT * FROM orders_raw WHERE id NOT IN (SELECT id FROM orders_clean)' }\n`,
      'invalid_spec',
      /nodes\[1\]\.sql: orders_clean's SQL reads orders_clean, orders_clean's own dataset: a node cannot depend on itself, .*compute them from the upstream with a window or lag mapping/,
    ],
    ['a mapping that does not fit', `${base}nodes:\n  - { id: a, transform: noop, partitions: { grain: week } }\n  - { id: b, transform: noop, partitions: { grain: month }, dependsOn: [{ node: a, mapping: window }] }\n`, 'mapping_mismatch', /nodes\[1\]\.dependsOn\[0\]\.mapping.*a week does not fit in a month/],
  ];
  for (const [label, body, code, message] of cases) {
    it(`rejects ${label} with a message naming the field, and starts nothing`, async () => {
      const dir = scratch('cli-bad');
      const spec = writeSpec(dir, 'spec.yaml', body);
      const planned = await backfill(['plan', spec, '--json']);
      expect(planned.code).not.toBe(0);
      expect(planned.json.error.code).toBe(code);
      expect(planned.json.error.message).toMatch(message);
      const human = await backfill(['plan', spec]);
      expect(human.code).not.toBe(0);
      expect(human.stderr).toMatch(message);

      const id = `bad-${code}-${Date.now()}`;
      const started = await backfill(['start', spec, '--id', id, '--json']);
      expect(started.code).not.toBe(0);
      expect(started.json.error.code).toBe(code);
      const client = await connectClient();
      try {
        await expect(client.describe(id)).rejects.toThrow(/no backfill/);
      } finally {
        await client.close();
      }
    });
  }
});

describe('backfill start, wait, status and control against a running worker', () => {
  let worker: TestWorker;
  let client: BackfillClient;
  const queue = uniqueQueue('cli');
  const env = { BACKFILL_TASK_QUEUE: queue, BACKFILL_UI_URL: '' };
  let dir: string;

  beforeAll(async () => {
    dir = scratch('cli');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db'), transformModules: [join(import.meta.dirname, '../../examples/shop/transforms.ts')] });
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('start then wait completes the example; the parent and one child per node are in Temporal', async () => {
    const spec = writeSpec(dir, 'shop.yaml', (await import('node:fs')).readFileSync(EXAMPLE, 'utf8').replace('transforms: [./transforms.ts]', `transforms: [${join(import.meta.dirname, '../../examples/shop/transforms.ts')}]`).replace('defaults:\n', `defaults:\n  taskQueue: ${queue}\n`));
    const id = `cli-shop-${Date.now()}`;
    const started = await backfill(['start', spec, '--id', id, '--from', '2024-01-01', '--to', '2024-02-15', '--json'], env);
    expect(started.code).toBe(0);
    expect(started.json).toMatchObject({ backfillId: id, workflowId: `backfill/${id}` });
    // This suite's dev server is not one backfill dev runs: a link only under BACKFILL_UI_URL (web-ui-link.test.ts).
    expect(started.json.uiUrl).toBeNull();
    expect(started.json.runId).toMatch(/^[0-9a-f-]{36}$/);

    const waited = await backfill(['wait', id, '--timeout', '3m', '--json'], env);
    expect(waited.code).toBe(0);
    expect(waited.json.state).toBe('completed');

    const status = await backfill(['status', id, '--json'], env);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({ backfillId: id, state: 'completed', paused: false });
    for (const node of status.json.nodes) {
      expect(node.done, node.id).toBe(node.total);
      expect(node).toMatchObject({ running: 0, failed: 0, blocked: 0, pending: 0 });
    }
    expect(status.json.nodes.map((n: { id: string }) => n.id)).toHaveLength(6);

    // What the Web UI lists: the parent and one node workflow per node, found by the BackfillId search attribute.
    const ids = new Set<string>();
    for await (const execution of client.client.workflow.list({ query: `BackfillId = "${id}"` })) ids.add(execution.workflowId);
    expect([...ids].sort()).toEqual([`backfill/${id}`, ...status.json.nodes.map((n: { id: string }) => `backfill/${id}/${n.id}`)].sort());

    // Lineage: which backfill, transform and upstream versions made a partition.
    const lineage = await backfill(['lineage', 'revenue_7d', '2024-01-10', '--warehouse', join(dir, 'warehouse.db'), '--json'], env);
    expect(lineage.code).toBe(0);
    expect(lineage.json.current).toMatchObject({ node: 'revenue_7d', partition: '2024-01-10', backfillId: id, transform: 'sql', status: 'published', current: true });
    expect(lineage.json.current.inputs).toEqual([
      expect.objectContaining({ node: 'daily_revenue', from: '2024-01-04', to: '2024-01-10', partitions: 7 }),
    ]);
    expect(Object.keys(lineage.json.current.inputs[0].versions)).toHaveLength(7);

    // Starting the same id again is refused; --rerun runs it deliberately.
    const again = await backfill(['start', spec, '--id', id, '--json'], env);
    expect(again.code).not.toBe(0);
    expect(again.json.error).toMatchObject({ code: 'already_exists' });
    expect(again.json.error.message).toMatch(/--rerun/);
  });

  it('start --attach joins a backfill that is already running instead of failing', async () => {
    // Two weeks of hours at 2 a second (168 s): still running after four command-line processes,
    // each seconds long on a loaded machine (four days, 48 s, was not far off). Cancelled, it costs nothing.
    const spec = writeSpec(dir, 'slow.yaml', `name: slow\npartitions: { grain: hour, start: 2024-01-01, end: 2024-01-15 }\ndefaults: { taskQueue: ${queue}, rate: 2 }\nnodes:\n  - { id: a, transform: noop }\n`);
    const id = `cli-attach-${Date.now()}`;
    const first = await backfill(['start', spec, '--id', id, '--json'], env);
    expect(first.code).toBe(0);
    const refused = await backfill(['start', spec, '--id', id, '--json'], env);
    expect(refused.json.error.code).toBe('already_exists');
    expect(refused.json.error.message).toMatch(/already running: .*\(with --attach, start goes on with the running one instead of failing\)$/);
    const attached = await backfill(['start', spec, '--id', id, '--attach', '--json'], env);
    expect(attached.code).toBe(0);
    expect(attached.json).toMatchObject({ backfillId: id, runId: first.json.runId, attached: true });
    const cancelled = await backfill(['cancel', id, '--json'], env);
    expect(cancelled.code).toBe(0);
    const waited = await backfill(['wait', id, '--json'], env);
    expect(waited.code).toBe(3);
    expect(waited.json.state).toBe('cancelled');
  });

  it('start --watch on a pipe prints how it ended once, and no hint to watch what it watches', async () => {
    const spec = writeSpec(dir, 'watched.yaml', `name: watched\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-11 }\ndefaults: { taskQueue: ${queue} }\nnodes:\n  - { id: a, transform: noop }\n  - { id: b, transform: noop, dependsOn: [a] }\n`);
    const id = `cli-watch-${Date.now()}`;
    const watched = await backfill(['start', spec, '--id', id, '--watch'], env);
    expect(watched.code, watched.stderr).toBe(0);
    const output = `${watched.stdout}\n${watched.stderr}`;
    // Before, the final headline was on stderr (the progress line) and on stdout (the end).
    expect(output.match(new RegExp(`${id} completed · 20/20 done`, 'g'))).toHaveLength(1);
    expect(output).not.toContain(`backfill status ${id} --watch`);
    const started = await backfill(['start', spec, '--id', `${id}-unwatched`], env);
    expect(started.stdout).toContain(`watch:  backfill status ${id}-unwatched --watch`);
    await backfill(['wait', `${id}-unwatched`, '--json'], env);
  });

  it('rejects bad control input with a clear message and changes nothing', async () => {
    const unknown = await backfill(['set-rate', 'no-such-backfill', '5', '--json'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.json.error.code).toBe('not_found');
    expect((await backfill(['pause', 'no-such-backfill'], env)).stderr).toMatch(/no backfill with id 'no-such-backfill'/);

    const negative = await backfill(['set-rate', 'whatever', '-1', '--json'], env);
    expect(negative.code).not.toBe(0);
    const zero = await backfill(['set-rate', 'whatever', '0', '--json'], env);
    expect(zero.json.error).toMatchObject({ code: 'invalid_argument' });
    expect(zero.json.error.message).toMatch(/above 0/);
    const concurrency = await backfill(['set-concurrency', 'whatever', '0', '--json'], env);
    expect(concurrency.json.error).toMatchObject({ code: 'invalid_argument' });
    expect(concurrency.json.error.message).toMatch(/whole number from 1/);
  });
});

describe('backfill dev', () => {
  it('serves a dev server with a worker: start then wait completes, and the state survives a restart', async () => {
    const { spawn } = await import('node:child_process');
    const { freePort } = await import('../../host/dev-server.ts');
    const home = scratch('dev');
    const port = await freePort();
    const uiPort = await freePort();
    const env = { ...process.env, BACKFILL_HOME: home, TEMPORAL_ADDRESS: `127.0.0.1:${port}`, BACKFILL_UI_URL: '', NO_COLOR: '1' };
    const startDev = async () => {
      const dev = spawn('node', [BIN, 'dev', '--port', String(port), '--ui-port', String(uiPort), '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      dev.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await waitFor('backfill dev to be ready', () => {
        if (dev.exitCode !== null) throw new Error(`backfill dev exited: ${out}`);
        return out.includes('"address"') ? (JSON.parse(out) as { address: string; uiUrl: string; database: string }) : undefined;
      }, 90_000, 100);
      return { dev, info: JSON.parse(out) as { address: string; uiUrl: string; database: string } };
    };
    const stopDev = async (dev: import('node:child_process').ChildProcess) => {
      const exited = new Promise((done) => dev.once('exit', done));
      dev.kill('SIGINT');
      await exited;
    };

    let { dev, info } = await startDev();
    try {
      expect(info).toMatchObject({ address: `127.0.0.1:${port}`, uiUrl: `http://localhost:${uiPort}`, database: join(home, 'temporal.db') });
      const ui = await fetch(info.uiUrl);
      expect(ui.ok).toBe(true);
      const id = `dev-${Date.now()}`;
      const started = await run('node', [BIN, 'start', EXAMPLE, '--id', id, '--from', '2024-03-01', '--to', '2024-03-15', '--json'], { env });
      // The Web UI of the dev server backfill dev runs in this BACKFILL_HOME, on its --ui-port (not the default 8233), with no BACKFILL_UI_URL.
      expect(JSON.parse(started.stdout)).toMatchObject({ backfillId: id, uiUrl: expect.stringContaining(`http://localhost:${uiPort}/namespaces/default/workflows/`) });
      const waited = await run('node', [BIN, 'wait', id, '--timeout', '2m', '--json'], { env });
      expect(JSON.parse(waited.stdout).state).toBe('completed');

      // The dev server keeps its state in its SQLite file: after a restart the backfill is still there.
      await stopDev(dev);
      ({ dev } = await startDev());
      const status = await run('node', [BIN, 'status', id, '--json'], { env });
      expect(JSON.parse(status.stdout)).toMatchObject({ backfillId: id, state: 'completed' });
    } finally {
      await stopDev(dev);
    }
  });
});

describe('backfill setup on a server started without the search attributes', () => {
  let server: DevServer;
  let client: BackfillClient;
  let dir: string;
  let env: Record<string, string>;
  let spec: string;
  const id = `setup-${Date.now()}`;
  const names = Object.keys(SEARCH_ATTRIBUTES);

  beforeAll(async () => {
    dir = scratch('setup');
    server = await startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null, logFile: join(dir, 'temporal.log'), searchAttributes: false });
    env = { TEMPORAL_ADDRESS: server.address };
    spec = writeSpec(dir, 'spec.yaml', `name: setup\npartitions: { keys: [a, b] }\nnodes:\n  - { id: a, transform: noop }\n`);
    client = await connectClient(server.address);
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  const workflows = async () => {
    const ids: string[] = [];
    for await (const execution of client.client.workflow.list()) ids.push(execution.workflowId);
    return ids;
  };

  it('a worker boots without them and warns that backfill setup is missing', async () => {
    const worker = workerProcess({ address: server.address, warehouse: join(dir, 'warehouse.db'), queue: uniqueQueue('setup'), env: { BACKFILL_LOG_LEVEL: 'WARN' } });
    try {
      await worker.start();
      expect(worker.running).toBe(true);
      expect(worker.log).toMatch(/namespace default lacks the search attributes BackfillId, BackfillNode, BackfillStatus: .*'backfill setup'/);
    } finally {
      await worker.stop();
    }
  });

  it('start fails before starting anything, naming backfill setup', async () => {
    const refused = await backfill(['start', spec, '--id', id, '--json'], env);
    expect(refused.code).toBe(1);
    expect(refused.json.error.message).toMatch(/namespace default lacks the search attributes BackfillId, BackfillNode, BackfillStatus .*run 'backfill setup'/);
    const human = await backfill(['start', spec, '--id', id], env);
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/backfill setup/);
    expect(await workflows()).toEqual([]);
  });

  it("the server's own refusal (what credentials that may not list search attributes get) is recognised", async () => {
    const error = await client.client.workflow
      .start('backfillWorkflow', { taskQueue: 'nobody', workflowId: `probe-${id}`, typedSearchAttributes: [{ key: BACKFILL_ID, value: id }] })
      .then(() => undefined, (e: unknown) => e);
    expect(unregisteredAttribute(error)).toBe('BackfillId');
    expect(await workflows()).toEqual([]);
  });

  it('setup registers them as Keyword and says so; a second run adds nothing', async () => {
    const first = await backfill(['setup', '--json'], env);
    expect(first.code).toBe(0);
    expect(first.json).toEqual({ namespace: 'default', added: names, existing: [] });
    const listed = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const name of names) expect(listed.customAttributes?.[name], name).toBe(2); // INDEXED_VALUE_TYPE_KEYWORD

    const again = await backfill(['setup', '--json'], env);
    expect(again.json).toEqual({ namespace: 'default', added: [], existing: names });
    const human = await backfill(['setup'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toBe(`namespace default:\n  nothing to add\n  already registered: ${names.join(', ')}\n`);
  });

  it('after setup, start starts the backfill', async () => {
    const started = await backfill(['start', spec, '--id', id, '--json'], env);
    expect(started.code).toBe(0);
    expect(started.json).toMatchObject({ backfillId: id, workflowId: `backfill/${id}` });
    await waitFor('the backfill in the visibility store', async () => (await workflows()).includes(`backfill/${id}`), 30_000, 200);
    await client.client.workflow.getHandle(`backfill/${id}`).terminate('test done');
  });

  it('setup on a namespace that does not exist names it', async () => {
    const missing = await backfill(['setup', '--namespace', 'no-such-namespace', '--json'], env);
    expect(missing.code).toBe(1);
    expect(missing.json.error).toMatchObject({ code: 'not_found' });
    expect(missing.json.error.message).toMatch(/namespace 'no-such-namespace' does not exist .*temporal operator namespace create/);
  });
});

describe('connection settings on the command line', () => {
  it('an unreachable server: the error names the address, namespace and profile tried, and the fix', async () => {
    const dir = scratch('profile');
    const config = join(dir, 'temporal.toml');
    writeFileSync(config, '[profile.offline]\naddress = "127.0.0.1:1"\nnamespace = "nowhere"\n');
    const result = await backfill(['status', 'x', '--profile', 'offline', '--json'], { TEMPORAL_ADDRESS: '', TEMPORAL_CONFIG_FILE: config });
    expect(result.code).toBe(1);
    expect(result.json.error.code).toBe('server_unavailable');
    expect(result.json.error.message).toContain(`127.0.0.1:1, namespace nowhere, profile 'offline' of ${config}`);
    expect(result.json.error.message).toMatch(/start one with 'backfill dev'.*--profile/);
  });

  it('--address wins over TEMPORAL_ADDRESS', async () => {
    const result = await backfill(['status', 'no-such-backfill', '--address', address(), '--json'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(result.json.error.code).toBe('not_found');
  });
});

describe('output to a reader that stops early', () => {
  it('backfill dev --help into a closed pipe exits 0 and writes no stack trace', async () => {
    const child = spawn('node', [BIN, 'dev', '--help'], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    // What `| head` does once it has its lines: the reading end of the pipe closes.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
