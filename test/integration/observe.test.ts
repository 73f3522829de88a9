/**
 * Watching a backfill from outside: a worker process's Prometheus endpoint, its JSON logs, and
 * its traces sent to an OTLP/HTTP receiver. Real workers, real server, real HTTP.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { NODE_GAUGES } from '../../core/metrics.ts';
import { freePort } from '../../host/dev-server.ts';
import { ROOT, address, connectClient, scratch, testSpec, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

const run = promisify(execFile);
const BIN = join(ROOT, 'bin/backfill.js');

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The samples of a Prometheus text exposition (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return parseMetrics(await response.text());
}

/** The complete lines a process has written so far. */
function lines(log: string): string[] {
  return log.split('\n').slice(0, -1);
}

describe('observing a backfill', () => {
  let client: BackfillClient;
  beforeAll(async () => {
    client = await connectClient();
  });
  afterAll(async () => {
    await client?.close();
  });

  it('a worker with --metrics-port serves the SDK metrics and backfill_* per node, moving while the backfill runs', async () => {
    const queue = uniqueQueue('metrics');
    const dir = scratch('metrics');
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), metricsPort: await freePort() });
    try {
      await worker.start();
      const url = worker.metricsUrl!;
      const spec = testSpec(queue, {
        name: 'metrics',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-31' },
        defaults: { retry: { maxAttempts: 1 } },
        nodes: [
          // Paced, so that two scrapes see it move.
          { id: 'rows', transform: 'sql', sql: 'SELECT :partition AS day', rate: 6, concurrency: 2 },
          { id: 'flaky', transform: 'sleep', params: { failKeys: ['2024-01-05'], throttleKeys: ['2024-01-07'] } },
        ],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });

      const first = await waitFor('a first partition of node rows on /metrics', async () => {
        const samples = await scrape(url);
        const done = total(samples, 'backfill_partitions_completed', { node: 'rows' });
        return done >= 1 && done < 30 ? samples : undefined;
      });
      const before = total(first, 'backfill_partitions_completed', { node: 'rows' });
      const second = await waitFor('backfill_partitions_completed{node="rows"} to move', async () => {
        const samples = await scrape(url);
        return total(samples, 'backfill_partitions_completed', { node: 'rows' }) > before ? samples : undefined;
      });
      expect(total(second, 'backfill_rows_written', { node: 'rows' })).toBeGreaterThan(total(first, 'backfill_rows_written', { node: 'rows' }));
      expect(total(second, 'backfill_partition_duration_seconds_count', { node: 'rows' })).toBeGreaterThan(before);
      // The SDK's own metrics come out of the same endpoint, and ours carry the task queue.
      expect(total(second, 'temporal_num_pollers', { task_queue: queue })).toBeGreaterThan(0);
      expect(second.find((s) => s.name === 'backfill_partitions_completed' && s.labels.node === 'rows')?.labels).toMatchObject({ taskQueue: queue, namespace: 'default' });

      expect((await client.wait(backfillId, 120_000)).state).toBe('completed_with_failures');
      const last = await waitFor('the flaky node on /metrics', async () => {
        const samples = await scrape(url);
        return total(samples, 'backfill_partitions_completed', { node: 'flaky' }) === 29 ? samples : undefined;
      });
      expect(total(last, 'backfill_partitions_completed', { node: 'rows' })).toBe(30);
      expect(total(last, 'backfill_rows_written', { node: 'rows' })).toBe(30);
      expect(total(last, 'backfill_partitions_failed', { node: 'flaky', final: 'true' })).toBe(1);
      expect(total(last, 'backfill_partitions_failed', { node: 'rows' })).toBe(0);
      expect(total(last, 'backfill_throttle_events', { node: 'flaky' })).toBe(1);
      expect(total(last, 'backfill_partition_duration_seconds_bucket', { node: 'rows', le: '+Inf' })).toBe(30);
      // Buckets down to a millisecond: before, the smallest was 50 ms, and p50 of a 1–12 ms partition could not be read.
      const buckets = last.filter((s) => s.name === 'backfill_partition_duration_seconds_bucket' && s.labels.node === 'rows').map((s) => Number(s.labels.le));
      expect(buckets).toEqual(expect.arrayContaining([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05]));

      // Every metric the Grafana dashboard reads is one a worker serves (the node workflows' gauges aside).
      const dashboard = readFileSync(join(ROOT, 'deploy/grafana/backfill.json'), 'utf8');
      const read = new Set(dashboard.match(/\b(?:backfill|temporal)_[a-z_]+\b/g));
      const served = new Set(last.map((s) => s.name));
      const missing = [...read].filter((name) => !served.has(name) && !(Object.values(NODE_GAUGES) as string[]).includes(name));
      expect(missing).toEqual([]);
    } finally {
      await worker.stop();
    }
  });

  it('backfills one after another on a worker leave one node gauge series per node, not one per backfill', async () => {
    const queue = uniqueQueue('cardinality');
    const dir = scratch('cardinality');
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), metricsPort: await freePort() });
    try {
      await worker.start();
      const spec = testSpec(queue, { name: 'card', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }, { id: 'b', transform: 'noop', dependsOn: ['a'] }] });
      for (let i = 0; i < 3; i++) {
        const { backfillId } = await client.start(spec, { taskQueue: queue, id: `${queue}-nightly-${i}` });
        expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
      }
      const series = await waitFor('the node gauges of both nodes on /metrics', async () => {
        const gauges = (await scrape(worker.metricsUrl!)).filter((s) => s.name === NODE_GAUGES.concurrency);
        return ['a', 'b'].every((node) => gauges.some((s) => s.labels.node === node)) ? gauges : undefined;
      });
      expect(series.map((s) => s.labels.node).sort()).toEqual(['a', 'b']);
      for (const s of series) {
        expect(s.labels).not.toHaveProperty('backfill');
        expect(s.labels.task_queue).toBe(queue);
      }
    } finally {
      await worker.stop();
    }
  });

  it("a cancelled backfill's nodes leave their concurrency gauge at 0, as nodes that complete do", async () => {
    const queue = uniqueQueue('cancel-gauge');
    const dir = scratch('cancel-gauge');
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), metricsPort: await freePort() });
    try {
      await worker.start();
      const url = worker.metricsUrl!;
      const gauge = async () => total(await scrape(url), NODE_GAUGES.concurrency, { node: 'long' });
      const spec = testSpec(queue, {
        name: 'cancel-gauge',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
        defaults: { concurrency: 3, heartbeatTimeout: '3s' },
        nodes: [{ id: 'long', transform: 'sleep', params: { ms: 120_000 } }],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      await waitFor('the node to show its concurrency', async () => (await gauge()) === 3);
      await client.cancel(backfillId);
      expect((await client.wait(backfillId, 60_000)).state).toBe('cancelled');
      await waitFor('the concurrency gauge of the cancelled node to drop to 0', async () => (await gauge()) === 0, 15_000);
    } finally {
      await worker.stop();
    }
  });

  it('a metrics port in use stops the worker with the port and the fix', async () => {
    const busy = createServer();
    const port = await freePort();
    await new Promise<void>((done) => busy.listen(port, '127.0.0.1', done));
    try {
      const failure = await run('node', [BIN, 'worker', '--metrics-port', String(port), '--metrics-host', '127.0.0.1'], {
        env: { ...process.env, TEMPORAL_ADDRESS: address(), NO_COLOR: '1' },
        timeout: 60_000,
      }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failure?.code).toBe(1);
      expect(failure?.stderr).toContain(`cannot serve metrics on 127.0.0.1:${port}: the port is in use`);
      expect(failure?.stderr).toContain('choose another --metrics-port');
    } finally {
      busy.close();
    }
  });

  it('--log-format json: one JSON object per line, and every line about a partition names backfill, node, partition and attempt', async () => {
    const queue = uniqueQueue('jsonlog');
    const dir = scratch('jsonlog');
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), logFormat: 'json', env: { BACKFILL_LOG_LEVEL: 'INFO' } });
    try {
      await worker.start();
      const spec = testSpec(queue, {
        name: 'jsonlog',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-04' },
        // One partition per activity: the SDK's line about a batch's activity names the batch
        // (`2024-01-02..2024-01-03`), and this test follows one partition's lines.
        defaults: { retry: { maxAttempts: 2, initialInterval: '100ms' }, batchSize: 1 },
        nodes: [{ id: 'bad', transform: 'sleep', params: { failKeys: ['2024-01-02'] } }],
      });
      const { backfillId } = await client.start(spec, { taskQueue: queue });
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed_with_failures');
      await waitFor('the log line of the last failure', () => worker.log.includes('"message":"partition failed"'));

      const records = lines(worker.log).map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new Error(`not a JSON line: ${line}`);
        }
      });
      for (const record of records) {
        expect(record).toMatchObject({ level: expect.any(String), message: expect.any(String), timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      }
      const about = (partition: string) => records.filter((r) => r.backfillId === backfillId && r.partition === partition);
      const failed = about('2024-01-02');
      const ours = failed.filter((r) => r.sdkComponent === 'activity');
      expect(ours.map((r) => [r.level, r.message, r.attempt])).toEqual([
        ['INFO', 'partition failed, will retry', 1],
        ['ERROR', 'partition failed', 2],
      ]);
      expect(ours[1]).toMatchObject({ node: 'bad', errorType: 'Error', willRetry: false, error: expect.stringContaining('injected failure') });
      // The SDK's own line about the failed activity carries them too.
      const sdk = failed.filter((r) => r.message === 'Activity failed');
      expect(sdk.map((r) => r.attempt)).toEqual([1, 2]);
      for (const record of sdk) expect(record).toMatchObject({ node: 'bad', partition: '2024-01-02', backfillId });
      expect(about('2024-01-01').find((r) => r.message === 'partition published')).toMatchObject({ node: 'bad', attempt: 1, version: 1 });
      expect(records.some((r) => r.taskToken !== undefined)).toBe(false);
    } finally {
      await worker.stop();
    }
  });

  it('an OTLP collector that is down costs the traces only: start and the worker exit 0, with a warning that names the endpoint', async () => {
    // Nothing listens there.
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint };
    const queue = uniqueQueue('otlp-down');
    const dir = scratch('otlp-down');
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), env: { ...otel, BACKFILL_LOG_LEVEL: 'WARN' } });
    try {
      await worker.start();
      const specFile = join(dir, 'spec.yaml');
      writeFileSync(specFile, ['name: otlp-down', 'partitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }', `defaults: { taskQueue: ${queue} }`, 'nodes:', '  - { id: a, transform: noop }'].join('\n'));
      const backfillId = `otlp-down-${queue}`;
      const started = await run('node', [BIN, 'start', specFile, '--id', backfillId], {
        env: { ...process.env, ...otel, TEMPORAL_ADDRESS: address(), BACKFILL_TASK_QUEUE: queue },
        timeout: 60_000,
      });
      expect(started.stderr).toContain(`warning: traces not sent to ${endpoint}/v1/traces`);
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed');
      expect(await worker.signal('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(worker.log).toMatch(new RegExp(`\\[WARN\\] traces not sent to ${endpoint}/v1/traces \\(.*ECONNREFUSED.*\\): the backfill is unaffected; .*OTEL_EXPORTER_OTLP_ENDPOINT`));
    } finally {
      await worker.stop();
    }
  });

  it('with OTEL_EXPORTER_OTLP_ENDPOINT, the command line, the workflows and the activities send spans of one trace', async () => {
    type Span = { name: string; traceId: string; service: string };
    const spans: Span[] = [];
    const receiver: Server = createServer((request, response) => {
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const sent = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
            scopeSpans: Array<{ spans: Array<{ name: string; traceId: string }> }>;
          }>;
        };
        for (const { resource, scopeSpans } of sent.resourceSpans) {
          const service = resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const scope of scopeSpans) for (const span of scope.spans) spans.push({ name: span.name, traceId: span.traceId, service });
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    const port = await freePort();
    await new Promise<void>((done) => receiver.listen(port, '127.0.0.1', done));
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '200' };
    const queue = uniqueQueue('traces');
    const dir = scratch('traces');
    // No prebuilt bundle: the worker bundles the workflows with the tracing interceptors.
    const worker = workerProcess({ address: address(), queue, warehouse: join(dir, 'warehouse.db'), env: { ...otel, BACKFILL_WORKFLOW_BUNDLE: '' } });
    try {
      await worker.start(120_000);
      const specFile = join(dir, 'spec.yaml');
      writeFileSync(
        specFile,
        [
          'name: traces',
          'partitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }',
          `defaults: { taskQueue: ${queue} }`,
          'nodes:',
          '  - { id: a, transform: noop }',
          '  - { id: b, transform: noop, dependsOn: [a] }',
        ].join('\n'),
      );
      const backfillId = `traces-${queue}`;
      await run('node', [BIN, 'start', specFile, '--id', backfillId, '--json'], {
        env: { ...process.env, ...otel, TEMPORAL_ADDRESS: address(), BACKFILL_TASK_QUEUE: queue },
        timeout: 60_000,
      });
      expect((await client.wait(backfillId, 60_000)).state).toBe('completed');

      const expected = ['StartWorkflow:backfillWorkflow', 'RunWorkflow:backfillWorkflow', 'StartChildWorkflow:nodeWorkflow', 'RunWorkflow:nodeWorkflow', 'StartActivity:runPartitions', 'RunActivity:runPartitions'];
      await waitFor(`spans ${expected.join(', ')}`, () => expected.every((name) => spans.some((s) => s.name === name)), 30_000);
      const started = spans.find((s) => s.name === 'StartWorkflow:backfillWorkflow')!;
      expect(started.service).toBe('backfill-client');
      const activities = spans.filter((s) => s.name === 'RunActivity:runPartitions');
      expect(activities.length).toBeGreaterThanOrEqual(4);
      for (const span of activities) expect(span).toMatchObject({ traceId: started.traceId, service: 'backfill-worker' });
    } finally {
      await worker.stop();
      receiver.close();
    }
  });
});
