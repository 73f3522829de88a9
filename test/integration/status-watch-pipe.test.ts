/**
 * `status --watch` and `start --watch` not on a terminal (a pipe, a file): each look, every
 * --interval, is a full status block on stdout, the last one showing how it ended; stderr stays
 * for notes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, type TestWorker } from './helpers.ts';

describe('--watch on a pipe', () => {
  const queue = uniqueQueue('status-watch-pipe');
  let client: BackfillClient;
  let worker: TestWorker;
  beforeAll(async () => {
    client = await connectClient();
    worker = await startTestWorker({ queue, warehousePath: `${scratch('status-watch-pipe')}/warehouse.db` });
  });
  afterAll(async () => {
    await client?.close();
    await worker?.stop();
  });

  it('status --watch prints a full status block on stdout every --interval until it ends, and nothing else', async () => {
    // Six partitions of 600 ms one at a time: about 4 s of work.
    const spec = testSpec(queue, { name: 'watch-pipe', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' }, nodes: [{ id: 'slow', transform: 'sleep', params: { ms: 600 }, concurrency: 1, batchSize: 1 }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    const { code, stdout, stderr } = await runCli(['status', backfillId, '--watch', '--interval', '500ms']);
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
    const blocks = stdout.split('\n\n').filter((b) => b.trim() !== '');
    // Every block is the whole status: its headline and the node's row.
    for (const block of blocks) {
      expect(block).toMatch(new RegExp(`^${backfillId} `));
      expect(block).toMatch(/│ slow /);
    }
    // Blocks while it ran, not only its end. How many depends on how long each look takes: a
    // loaded machine (a CI run's neighbours) took seconds a look, so their count is not held to
    // the interval here (client/watch.ts' loop is).
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(blocks.filter((b) => !/^\S+ completed/.test(b)).length).toBeGreaterThanOrEqual(1);
    expect(blocks.at(-1)).toMatch(new RegExp(`^${backfillId} completed`));
    expect(blocks.filter((b) => /^\S+ completed/.test(b))).toHaveLength(1);
  }, 120_000);

  it('start --watch prints its start, then a full status block on stdout every --interval until it ends, and nothing else', async () => {
    const dir = scratch('start-watch-pipe');
    const file = join(dir, 'spec.json');
    // Six partitions of 600 ms one at a time: about 4 s of work.
    writeFileSync(file, JSON.stringify({ name: 'start-watch-pipe', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' }, defaults: { taskQueue: queue }, nodes: [{ id: 'slow', transform: 'sleep', params: { ms: 600 }, concurrency: 1, batchSize: 1 }] }));
    const id = `start-watch-pipe-${Date.now()}`;
    const { code, stdout, stderr } = await runCli(['start', file, '--id', id, '--watch', '--interval', '500ms'], { BACKFILL_TASK_QUEUE: queue });
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
    const [head, ...blocks] = stdout.split('\n\n').filter((b) => b.trim() !== '');
    expect(head).toMatch(new RegExp(`^started ${id}\n`));
    for (const block of blocks) {
      expect(block).toMatch(new RegExp(`^${id} `));
      expect(block).toMatch(/│ slow /);
    }
    // Blocks while it ran, not a line on stderr every 5 s (as above, their count is not held to the interval).
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(blocks.filter((b) => !/^\S+ completed/.test(b)).length).toBeGreaterThanOrEqual(1);
    // The last block says how it ended, once: no end text after it.
    expect(blocks.at(-1)).toMatch(new RegExp(`^${id} completed`));
    expect(blocks.filter((b) => /^\S+ completed/.test(b))).toHaveLength(1);
  }, 120_000);

  it('start --watch holds --interval to its bounds, before anything starts', async () => {
    const { code, stderr } = await runCli(['start', 'no-such-spec.yaml', '--watch', '--interval', '10ms']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--interval '10ms' must be from 100ms to 10m/);
  });
});
