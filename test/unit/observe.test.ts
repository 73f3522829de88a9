import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { GracefulShutdownPeriodExpiredError } from '@temporalio/worker';
import type { NodeProgress, Progress, RunPartitionsInput } from '../../core/protocol.ts';
import { NODE_GAUGES, PARTITION_METRICS } from '../../core/metrics.ts';
import { isRunPartitionsInput, partitionAttributes } from '../../activities/telemetry.ts';
import { telemetryFrom } from '../../client/serve.ts';
import { printable } from '../../client/printable.ts';
import { renderStatus, renderWaiting } from '../../client/render.ts';
import { SILENT_AFTER_MS, queueState, waitingNodes, withTransforms, type QueueState } from '../../client/waiting.ts';
import { createLogger, jsonLine, logSettings, textLine, textMeta } from '../../workers/logging.ts';
import { POLICY_REFUSAL } from '../../core/policy.ts';
import { metricsUrl, parseMetricsPort, runtimeOptions } from '../../workers/telemetry.ts';
import { tracingRequested } from '../../workers/tracing.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const plain = (text: string) => stripVTControlCharacters(text);

describe('log settings', () => {
  it('default to human-readable lines at WARN', () => {
    expect(logSettings()).toEqual({ format: 'text', level: 'WARN' });
  });

  it('JSON logs default to INFO; the level ($BACKFILL_LOG_LEVEL) wins, in any case', () => {
    expect(logSettings('json')).toEqual({ format: 'json', level: 'INFO' });
    expect(logSettings('json', 'debug')).toEqual({ format: 'json', level: 'DEBUG' });
    expect(logSettings('text', '')).toEqual({ format: 'text', level: 'WARN' });
    expect(telemetryFrom({ metricsHost: '0.0.0.0', logFormat: 'json' }, 'error').log).toEqual({ format: 'json', level: 'ERROR' });
  });

  it('name the flag or variable and the choices when they are wrong', () => {
    expect(() => logSettings('xml')).toThrow("--log-format 'xml' is not a log format: use text (human-readable) or json (one object per line)");
    expect(() => logSettings('text', 'loud')).toThrow("BACKFILL_LOG_LEVEL 'loud' is not a log level: use one of TRACE, DEBUG, INFO, WARN, ERROR");
  });
});

describe('jsonLine', () => {
  const at = BigInt(Date.UTC(2024, 2, 1, 5, 6, 7, 890)) * 1_000_000n;

  it('is one line of JSON: timestamp, level, message, then the attributes', () => {
    const line = jsonLine({ level: 'INFO', message: 'partition published', timestampNanos: at, meta: { backfillId: 'b', node: 'a', partition: '2024-01-01', attempt: 1 } });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trimEnd()).not.toContain('\n');
    expect(Object.entries(JSON.parse(line) as object)).toEqual([
      ['timestamp', '2024-03-01T05:06:07.890Z'],
      ['level', 'INFO'],
      ['message', 'partition published'],
      ['backfillId', 'b'],
      ['node', 'a'],
      ['partition', '2024-01-01'],
      ['attempt', 1],
    ]);
  });

  it('keeps errors readable, bigints as strings, cuts cycles, drops the task token, and never lets attributes replace the level or message', () => {
    const cause = new Error('disk full');
    const failure = Object.assign(new Error('publish failed', { cause }), { type: 'SqlError' });
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    const parsed = JSON.parse(
      jsonLine({ level: 'WARN', message: 'Activity failed', timestampNanos: at, meta: { error: failure, rows: 12n, loop, taskToken: 'secret', level: 'DEBUG', message: 'x', when: new Date(0) } }),
    ) as Record<string, unknown>;
    expect(parsed).toEqual({
      timestamp: '2024-03-01T05:06:07.890Z',
      level: 'WARN',
      message: 'Activity failed',
      error: { name: 'Error', message: 'publish failed', type: 'SqlError', cause: { name: 'Error', message: 'disk full' } },
      rows: '12',
      loop: { name: 'loop', self: '[circular]' },
      when: '1970-01-01T00:00:00.000Z',
    });
  });
});

describe('the SDK\'s logger', () => {
  it("leaves out the warning that a worker serving only activities has no workflows, and nothing else", () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    try {
      const logger = createLogger({ format: 'json', level: 'INFO' });
      logger.warn('No workflows registered, not polling for workflow tasks', { sdkComponent: 'worker', taskQueue: 'backfill.policy' });
      logger.warn('Activity failed', { taskQueue: 'backfill' });
    } finally {
      write.mockRestore();
    }
    expect(lines.map((line) => JSON.parse(line).message)).toEqual(['Activity failed']);
  });

  it('leaves out the error of a worker that gave up waiting at shutdown (we name what it abandoned), and no other failure', () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    try {
      const logger = createLogger({ format: 'json', level: 'INFO' });
      logger.error('Worker failed', { sdkComponent: 'worker', taskQueue: 'backfill', error: new GracefulShutdownPeriodExpiredError('Timed out while waiting for worker to shutdown gracefully') });
      logger.error('Worker failed', { sdkComponent: 'worker', taskQueue: 'backfill', error: new Error('Poll failed') });
      logger.error('Activity failed', { taskQueue: 'backfill', error: new GracefulShutdownPeriodExpiredError('not the worker') });
    } finally {
      write.mockRestore();
    }
    expect(lines.map((line) => [JSON.parse(line).message, JSON.parse(line).error.message])).toEqual([
      ['Worker failed', 'Poll failed'],
      ['Activity failed', 'not the worker'],
    ]);
  });
});

describe('a workflow that refused to start', () => {
  it('is one line at INFO naming the refusal, not a warning with a stack; any other failure stays a warning with its error', () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    // As it reaches the logger from the workflow thread: a plain Error, its failure type gone.
    const refused = new Error(`${POLICY_REFUSAL}\n- caps.backfill.rate: too fast`);
    try {
      const text = createLogger({ format: 'text', level: 'INFO' });
      text.warn('Workflow failed', { sdkComponent: 'worker', workflowId: 'backfill/b', error: refused });
      const json = createLogger({ format: 'json', level: 'INFO' });
      json.warn('Workflow failed', { workflowId: 'backfill/b', error: refused });
      json.warn('Workflow failed', { workflowId: 'backfill/c', error: new Error('boom') });
    } finally {
      write.mockRestore();
    }
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/\[INFO\] workflow refused to start .*refused: 'the policy refuses this backfill:\\n- caps.backfill.rate: too fast'/);
    expect(lines[0]).not.toMatch(/^\s+at /m);
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'INFO', message: 'workflow refused to start', workflowId: 'backfill/b', refused: `${POLICY_REFUSAL}\n- caps.backfill.rate: too fast` });
    expect(JSON.parse(lines[1]!)).not.toHaveProperty('error');
    expect(JSON.parse(lines[2]!)).toMatchObject({ level: 'WARN', message: 'Workflow failed', error: { message: 'boom' } });
  });
});

describe('text log lines', () => {
  it("print a partition activity's failure that the SDK logs with its error in one line, without its stack, causes or task token", () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    const failure = Object.assign(new Error('column "amount" does not exist', { cause: new Error('deep cause') }), { name: 'SqlError' });
    try {
      const logger = createLogger({ format: 'text', level: 'WARN' });
      logger.warn('Activity failed', { taskToken: 'c2VjcmV0LXRva2Vu', activityType: 'runPartitions', backfillId: 'shop', node: 'orders', partition: '2024-01-01', error: failure });
    } finally {
      write.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SqlError: column "amount" does not exist');
    expect(lines[0]).toContain("partition: '2024-01-01'");
    expect(lines[0]).not.toContain('c2VjcmV0LXRva2Vu');
    expect(lines[0]).not.toContain('deep cause');
    expect(lines[0]).not.toMatch(/^\s+at /m);
  });

  it("print a failed partition on one line, naming its backfill, node and partition without the SDK's context (JSON keeps it)", () => {
    const sdk = { sdkComponent: 'activity', taskQueue: 'backfill', isLocal: false, namespace: 'default', activityId: 'clean/2024-03-01T00', activityType: 'runPartitions', workflowId: 'backfill/b/clean', workflowRunId: 'r', workflowType: 'nodeWorkflow' };
    const own = { backfillId: 'b', node: 'clean', partition: '2024-03-01T00', attempt: 1, errorType: 'SqlError', error: 'no such column: value_mili in SQL: SELECT a\nFROM raw\nWHERE value_mili >= 0', willRetry: false };
    const line = textLine({ level: 'ERROR', message: 'partition failed', timestampNanos: 1_709_269_567_890_000_000n, meta: textMeta('partition failed', { ...sdk, ...own }) }, false);
    expect(line.split('\n')).toEqual([expect.stringMatching(/^2024-03-01T05:06:07\.890Z \[ERROR\] partition failed \{ backfillId: 'b', node: 'clean', partition: '2024-03-01T00', attempt: 1, .*willRetry: false \}$/), '']);
    expect(line).not.toMatch(/workflowRunId|sdkComponent|nodeWorkflow/);
    // A line that names no backfill (the worker's own) keeps the SDK's context.
    expect(textMeta('Worker failed', { sdkComponent: 'worker', taskQueue: 'backfill' })).toEqual({ sdkComponent: 'worker', taskQueue: 'backfill' });
  });

  it("keep another activity's error whole (its stack tells a fault the product does not log), but never the task token", () => {
    const error = new Error('lease store down');
    const kept = textMeta('Activity failed', { taskToken: 'dG9rZW4', activityType: 'acquireDatasets', error });
    expect(kept).toEqual({ activityType: 'acquireDatasets', error });
    const typed = Object.assign(new Error('rate'), { name: 'ApplicationFailure', type: 'ThrottledError' });
    expect(textMeta('Activity failed', { backfillId: 'b', error: typed }).error).toBe('ApplicationFailure (ThrottledError): rate');
    expect(textMeta('partition failed', { backfillId: 'b', error: 'boom', taskToken: 'x' })).toEqual({ backfillId: 'b', error: 'boom' });
  });
});

describe('metrics settings', () => {
  it('take a port from 1 to 65535, and say so otherwise', () => {
    expect(parseMetricsPort('9464')).toBe(9464);
    for (const bad of ['0', '65536', '94.64', 'http', '']) {
      expect(() => parseMetricsPort(bad)).toThrow(`--metrics-port '${bad}' is not a port: use a whole number from 1 to 65535`);
    }
  });

  it('need an IP address to listen on', () => {
    expect(telemetryFrom({ metricsPort: '9464', metricsHost: '0.0.0.0' }).metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(telemetryFrom({ metricsHost: '0.0.0.0' }).metrics).toBeUndefined();
    expect(() => telemetryFrom({ metricsPort: '9464', metricsHost: 'localhost' })).toThrow("--metrics-host 'localhost' is not an IP address");
  });

  it('install the Prometheus exporter with seconds buckets for partition durations, and forward the core logs', () => {
    const options = runtimeOptions({ log: { format: 'json', level: 'INFO' }, metrics: { host: '0.0.0.0', port: 9464 } });
    expect(options.telemetryOptions?.metrics).toMatchObject({
      prometheus: { bindAddress: '0.0.0.0:9464', histogramBucketOverrides: { [PARTITION_METRICS.duration]: expect.arrayContaining([0.001, 0.005, 0.01, 0.05, 3600]) } },
    });
    expect(options.telemetryOptions?.logging).toEqual({ filter: { core: 'INFO', other: 'ERROR' }, forward: {} });
    expect(runtimeOptions({ log: { format: 'text', level: 'WARN' } }).telemetryOptions?.metrics).toBeUndefined();
    expect(runtimeOptions({ log: { format: 'text', level: 'WARN' }, metrics: { host: '::1', port: 9 } }).telemetryOptions?.metrics).toMatchObject({ prometheus: { bindAddress: '[::1]:9' } });
  });

  it('print a URL one can open', () => {
    expect(metricsUrl({ host: '0.0.0.0', port: 9464 })).toBe('http://localhost:9464/metrics');
    expect(metricsUrl({ host: '127.0.0.1', port: 9464 })).toBe('http://127.0.0.1:9464/metrics');
    expect(metricsUrl({ host: '::1', port: 9464 })).toBe('http://[::1]:9464/metrics');
  });
});

describe('tracing switch', () => {
  it('is on when an OTLP endpoint is set, unless the SDK is disabled', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });
});

describe('partition log attributes', () => {
  const input = (keys: string[]): RunPartitionsInput => ({
    backfillId: 'shop-1',
    runKey: 'run',
    workflowId: 'backfill/shop-1/orders',
    node: { id: 'orders', transform: 'noop', params: {}, checks: [], heartbeatTimeout: '30s' },
    partitions: keys.map((key, index) => ({ index, key, window: null, inputs: [], throttled: 0 })),
    maxAttempts: 3,
  });

  it('name the backfill, the node and the partition (a range for a batch)', () => {
    expect(partitionAttributes(input(['2024-01-01']))).toEqual({ backfillId: 'shop-1', node: 'orders', partition: '2024-01-01' });
    expect(partitionAttributes(input(['2024-01-01', '2024-01-02', '2024-01-03']))).toEqual({ backfillId: 'shop-1', node: 'orders', partition: '2024-01-01..2024-01-03', partitions: 3 });
  });

  it('come only from the partition activity', () => {
    expect(isRunPartitionsInput(input(['x']))).toBe(true);
    expect(isRunPartitionsInput(undefined)).toBe(false);
    expect(isRunPartitionsInput({ backfillId: 'b' })).toBe(false);
  });
});

function node(id: string, fields: Partial<NodeProgress> = {}): NodeProgress {
  return { id, total: 10, done: 0, running: 0, failed: 0, blocked: 0, pending: 0, rate: null, concurrency: 4, throttles: 0, throughput: null, etaSeconds: null, failures: [], ...fields };
}

function progress(nodes: NodeProgress[], paused = false): Progress {
  return { backfillId: 'b', name: 'b', state: 'running', paused, rate: null, concurrency: null, total: 20, done: 0, running: 0, failed: 0, blocked: 0, pending: 0, throughput: null, etaSeconds: null, runs: 1, nodes };
}

describe('queueState', () => {
  const now = Date.parse('2024-03-01T12:00:00Z');

  it('no poller in the server\'s memory: no worker', () => {
    expect(queueState([], now)).toEqual({ reason: 'no_worker', lastPollAt: null });
  });

  it('a recent poll: a worker is there (an idle one polls about once a minute)', () => {
    expect(queueState([{ identity: 'w1', lastAccessMs: now - 60_000 }], now)).toBeUndefined();
    expect(queueState([{ identity: 'w1', lastAccessMs: now - 10 * 60_000 }, { identity: 'w2', lastAccessMs: now - 1000 }], now)).toBeUndefined();
  });

  it('only old polls: the workers went silent, since the last one', () => {
    const last = now - SILENT_AFTER_MS - 1;
    expect(queueState([{ identity: 'w1', lastAccessMs: last }, { identity: 'w2', lastAccessMs: last - 5000 }], now)).toEqual({ reason: 'workers_silent', lastPollAt: new Date(last).toISOString() });
    expect(queueState([{ identity: 'w1', lastAccessMs: undefined }], now)).toEqual({ reason: 'workers_silent', lastPollAt: null });
  });
});

describe('waitingNodes', () => {
  const queues = new Map([['a', 'warehouse'], ['b', 'backfill'], ['c', 'warehouse']]);
  const states = new Map<string, QueueState>([['warehouse', { reason: 'no_worker', lastPollAt: null }]]);

  it('lists the nodes with work left on a queue nobody polls', () => {
    const nodes = [node('a', { pending: 3 }), node('b', { pending: 3 }), node('c', { done: 10 })];
    expect(waitingNodes(nodes, false, queues, states)).toEqual([{ node: 'a', taskQueue: 'warehouse', reason: 'no_worker', lastPollAt: null }]);
  });

  it('when paused, only partitions already running wait for a worker', () => {
    expect(waitingNodes([node('a', { pending: 3 })], true, queues, states)).toEqual([]);
    expect(waitingNodes([node('a', { running: 2 })], true, queues, states)).toHaveLength(1);
  });

  it('says nothing of a node whose queue it does not know', () => {
    expect(waitingNodes([node('z', { pending: 3 })], false, queues, states)).toEqual([]);
  });
});

describe('status output', () => {
  const stalled = progress([node('orders', { done: 4, running: 4, pending: 2 }), node('daily', { pending: 10 })]);

  it('names the node, the queue and the fix', () => {
    const lines = renderWaiting(printable({ ...stalled, waiting: [{ node: 'orders', taskQueue: 'warehouse', reason: 'no_worker', lastPollAt: null }] })).map(plain);
    expect(lines).toEqual([
      "  ⚠ orders: 6 partitions wait on task queue 'warehouse', and no worker polls it: start a worker with 'backfill worker --no-workflows --task-queue warehouse'",
    ]);
    expect(plain(renderStatus({ ...stalled, waiting: [{ node: 'orders', taskQueue: 'warehouse', reason: 'no_worker', lastPollAt: null }] }))).toContain(lines[0]);
    // With the spec's transform modules: a worker started without them fails every partition of a transform node.
    const waiting = withTransforms([{ node: 'orders', taskQueue: 'warehouse', reason: 'no_worker', lastPollAt: null }], { transforms: ['./transforms.ts', './more transforms.ts'] });
    expect(plain(renderWaiting(printable({ ...stalled, waiting }))[0]!)).toMatch(/start a worker with 'backfill worker --no-workflows --task-queue warehouse --transforms \.\/transforms\.ts \.\/more\\ transforms\.ts'$/);
    expect(withTransforms(waiting, { transforms: [] })).toBe(waiting);
  });

  it('tells how long silent workers have been silent', () => {
    const lastPollAt = new Date(Date.now() - 5 * 60_000).toISOString();
    const [line] = renderWaiting(printable({ ...stalled, waiting: [{ node: 'daily', taskQueue: 'backfill', reason: 'workers_silent', lastPollAt }] })).map(plain);
    expect(line).toMatch(/daily: 10 partitions wait on task queue 'backfill', and its workers last polled 5m( \d\ds)? ago \(stopped, or every slot busy\)/);
  });

  it('says nothing when nothing waits', () => {
    expect(renderWaiting(printable({ ...stalled, waiting: [] }))).toEqual([]);
    expect(renderWaiting(printable(stalled))).toEqual([]);
  });
});

describe('the Grafana dashboard', () => {
  type Panel = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: Array<{ expr: string; datasource: { uid: string } }> };
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/backfill.json'), 'utf8')) as {
    uid: string;
    panels: Panel[];
    templating: { list: Array<{ name: string }> };
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it('reads only the backfill_* metrics the code emits (or the node gauges) and the SDK\'s temporal_* ones', () => {
    const known = new Set<string>([...Object.values(PARTITION_METRICS), ...Object.values(NODE_GAUGES)]);
    const used = new Set(exprs.flatMap((e) => e.match(/\b(?:backfill|temporal)_[a-z_]+\b/g) ?? []));
    const ours = [...used].filter((m) => m.startsWith('backfill_')).map((m) => m.replace(/_(bucket|sum|count)$/, ''));
    expect(ours.filter((m) => !known.has(m))).toEqual([]);
    for (const metric of Object.values(PARTITION_METRICS)) expect(ours, `${metric} on no panel`).toContain(metric);
    for (const metric of Object.values(NODE_GAUGES)) expect(ours, `${metric} on no panel`).toContain(metric);
  });

  it('neither filters nor groups by a backfill id: the metrics carry none (a series per backfill would never go away)', () => {
    expect(dashboard.templating.list.map((v) => v.name)).not.toContain('backfill');
    for (const expr of exprs) expect(expr).not.toMatch(/\bbackfill\s*(=|!=|=~|!~)|by \([^)]*\bbackfill\b/);
  });

  it('has unique panel ids, fits the 24-column grid, and every query uses the datasource and variables it defines', () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
    const variables = new Set(dashboard.templating.list.map((v) => v.name));
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      for (const target of panel.targets ?? []) {
        expect(target.datasource.uid).toBe('${datasource}');
        const referenced = [...target.expr.matchAll(/\$(?!__)([a-z_]+)/g)].map((m) => m[1]);
        for (const name of referenced) expect(variables, `$${name} in ${panel.title}`).toContain(name);
      }
    }
  });
});
