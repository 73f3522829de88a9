/**
 * core/'s governance functions inside a real workflow on the dev server: run windows need
 * Intl.DateTimeFormat with a time zone, and planHash a SHA-256 that is not node:crypto. Each
 * must give in the workflow sandbox exactly what it gives in Node.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { planHash } from '../../core/approval.ts';
import { RunWindows, WindowsSchema, describeWindows, offsetAt } from '../../core/windows.ts';
import { RangeSet } from '../../core/ranges.ts';
import { address, testSpec, uniqueQueue } from './helpers.ts';
import { installRuntime } from '../../client/local.ts';
import type { WindowAnswer } from './fixtures/governance-workflows.ts';

const queue = uniqueQueue('governance');
let worker: Worker;
let running: Promise<void>;
let workerConnection: NativeConnection;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
  installRuntime();
  const silent = () => undefined;
  const bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./fixtures/governance-workflows.ts', import.meta.url)),
    logger: { log: silent, trace: silent, debug: silent, info: silent, warn: silent, error: silent },
  });
  workerConnection = await NativeConnection.connect({ address: address() });
  worker = await Worker.create({ connection: workerConnection, taskQueue: queue, workflowBundle: bundle });
  running = worker.run();
  connection = await Connection.connect({ address: address() });
  client = new Client({ connection });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await workerConnection?.close();
  await connection?.close();
});

const run = <T>(workflow: string, ...args: unknown[]) =>
  client.workflow.execute(workflow, { taskQueue: queue, workflowId: `${queue}-${workflow}-${Math.random().toString(36).slice(2)}`, args }) as Promise<T>;

describe('governance in the workflow sandbox', () => {
  it('reads time zones with Intl and gives what Node gives, DST nights included', async () => {
    const windows = WindowsSchema.parse({ timeZone: 'Europe/Berlin', allow: [{ days: 'weekdays', from: '22:00', to: '06:00' }], outside: 'pause' });
    const instants = [
      '2024-03-04T17:48:00Z', // Monday evening: next window in 3 h 12 min
      '2024-03-04T22:00:00Z', // inside
      '2024-03-29T21:30:00Z', // Friday night before the spring-forward night
      '2024-03-31T01:30:00Z', // inside the skipped hour's aftermath (Sunday, no window)
      '2024-10-25T22:00:00Z', // Friday night before fall-back
      '2024-10-27T01:30:00Z', // the repeated hour
    ].map(Date.parse);
    const answers = await run<WindowAnswer[]>('windowsInWorkflow', { windows, instants });
    const schedule = new RunWindows(windows);
    expect(answers).toEqual(
      instants.map((t) => ({ t, offset: offsetAt('Europe/Berlin', t), state: schedule.at(t), description: describeWindows(schedule, t), paused: !schedule.isOpen(t) })),
    );
    expect(answers[0]!.description).toBe('outside the run windows (paused): next window opens Mon 22:00 Europe/Berlin, in 3 h 12 min');
    expect(answers.map((a) => a.offset / 3_600_000)).toEqual([1, 1, 1, 2, 2, 1]);
  });

  it('refuses a time zone that does not exist there too', async () => {
    expect(await run<string>('unknownZoneInWorkflow', 'Mars/Olympus_Mons')).toMatch(/time zone 'Mars\/Olympus_Mons' does not exist: use an IANA name/);
    expect(await run<string>('unknownZoneInWorkflow', 'America/New_York')).toBe('accepted');
  });

  it('hashes a plan to the same value as Node', async () => {
    const spec = testSpec(queue, { name: 'hash', partitions: { grain: 'day', start: '2024-01-01', end: '2024-03-01' }, nodes: [{ id: 'orders', transform: 'noop', params: { note: 'ünïcode ✓' } }] });
    const plan = { spec, range: { from: Date.parse('2024-01-10T00:00:00Z') }, skip: { orders: RangeSet.of([0, 2]).toJSON() } };
    expect(await run<string>('planHashInWorkflow', plan)).toBe(planHash(plan));
  });
});
