/**
 * The stop of `backfill dev` and `backfill demo` (startLocal's stack, stopped on Ctrl-C): the
 * partitions in flight get the same shutdown grace as `backfill worker`'s, instead of being
 * cancelled at once.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { localConnection } from '../../client/connection.ts';
import { startLocal } from '../../client/local.ts';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { freePort } from '../../host/dev-server.ts';
import { logSettings } from '../../workers/logging.ts';
import { scratch, testSpec, waitFor } from './helpers.ts';

/** Marks its start, takes `ms`, then marks its end; marks 'aborted' where its signal aborts first. */
const TRANSFORMS = `
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
export default {
  slow: async ({ partition, params, signal }) => {
    writeFileSync(params.dir + '/started-' + partition, '');
    try {
      await delay(params.ms, undefined, { signal });
    } catch (error) {
      writeFileSync(params.dir + '/aborted-' + partition, '');
      throw error;
    }
    writeFileSync(params.dir + '/finished-' + partition, '');
    return [{ day: partition }];
  },
};
`;

describe("dev and demo's stack stopped while a partition runs", () => {
  it('lets the partition finish within the grace (as backfill worker does): published on its first attempt, never aborted', async () => {
    const dir = scratch('local-stop');
    const transforms = join(dir, 'transforms.mjs');
    writeFileSync(transforms, TRANSFORMS);
    const warehousePath = join(dir, 'warehouse.db');
    const stack = await startLocal({
      home: dir,
      port: await freePort(),
      uiPort: null,
      worker: true,
      transforms: [transforms],
      warehouse: warehousePath,
      workflowBundle: inject('workflowBundlePath'),
      // dev's and demo's own stop, without the SDK's signal handlers in the test's process.
      telemetry: { log: logSettings('text', 'ERROR'), shutdownSignals: [] },
      log: () => undefined,
    });
    let client: BackfillClient | undefined;
    let stopped = false;
    const warehouse = new SqliteWarehouse(warehousePath);
    try {
      client = await BackfillClient.connect({ settings: localConnection(stack.address) });
      const spec = testSpec('backfill', {
        name: 'local-stop',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-02' },
        defaults: { retry: { maxAttempts: 1 } },
        nodes: [{ id: 'days', transform: 'slow', params: { dir, ms: 3000 }, batchSize: 1 }],
      });
      const { backfillId } = await client.start(spec);
      await waitFor('the partition to start', () => existsSync(join(dir, 'started-2024-01-01')));
      // What dev does on Ctrl-C (and demo, once its backfill is cancelled): stop the stack.
      const outcome = await stack.stop();
      stopped = true;
      expect(outcome).toEqual({ expired: null, warehouseClosed: true });
      expect(existsSync(join(dir, 'aborted-2024-01-01'))).toBe(false);
      expect(existsSync(join(dir, 'finished-2024-01-01'))).toBe(true);
      const rows = await warehouse.ledger({ backfillId });
      expect(rows.map((r) => [r.partition, r.status, r.attempt])).toEqual([['2024-01-01', 'published', 1]]);
    } finally {
      await client?.close();
      if (!stopped) await stack.stop();
      await warehouse.close();
    }
  });
});
