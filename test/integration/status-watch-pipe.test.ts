/**
 * `status --watch` not on a terminal (a pipe, a file): each look, every --interval, is a full
 * status block on stdout, the last one showing how it ended; stderr stays for notes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackfillClient } from '../../client/backfill-client.ts';
import { connectClient, runCli, scratch, startTestWorker, testSpec, uniqueQueue, type TestWorker } from './helpers.ts';

describe('status --watch on a pipe', () => {
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

  it('prints a full status block on stdout every --interval until it ends, and nothing else', async () => {
    // Six partitions of 600 ms one at a time: about 4 s of work.
    const spec = testSpec(queue, { name: 'watch-pipe', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-07' }, nodes: [{ id: 'slow', transform: 'sleep', params: { ms: 600 }, concurrency: 1, batchSize: 1 }] });
    const { backfillId } = await client.start(spec, { taskQueue: queue });
    const began = Date.now();
    const { code, stdout, stderr } = await runCli(['status', backfillId, '--watch', '--interval', '500ms']);
    const took = Date.now() - began;
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
    const blocks = stdout.split('\n\n').filter((b) => b.trim() !== '');
    // Every block is the whole status: its headline and the node's row.
    for (const block of blocks) {
      expect(block).toMatch(new RegExp(`^${backfillId} `));
      expect(block).toMatch(/│ slow /);
    }
    // A block every 500 ms (not one every 5 s): at least half as many as the watch's half-seconds, the start of the process aside.
    expect(blocks.length).toBeGreaterThanOrEqual(Math.floor((took - 3000) / 1000));
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.at(-1)).toMatch(new RegExp(`^${backfillId} completed`));
    expect(blocks.filter((b) => /^\S+ completed/.test(b))).toHaveLength(1);
  }, 120_000);
});
