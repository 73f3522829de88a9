/** `backfill demo` end to end, twice: it completes, and every partition's checksum is reproduced. */
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SqliteWarehouse } from '../../activities/warehouse/sqlite/sqlite-dialect.ts';
import { scratch, waitFor } from './helpers.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/backfill.js');

describe('backfill demo', () => {
  it('completes the example and gives identical checksums on a second run', async () => {
    const home = scratch('demo');
    const env = { ...process.env, BACKFILL_HOME: home, NO_COLOR: '1' };
    const demo = async () => {
      const { stdout } = await run('node', [BIN, 'demo', '--json'], { env, timeout: 240_000, cwd: join(import.meta.dirname, '../..') });
      return JSON.parse(stdout) as { backfillId: string; state: string; partitions: number; total: number; fingerprint: string };
    };
    const first = await demo();
    expect(first).toMatchObject({ state: 'completed', partitions: 1528, total: 1528 });
    const second = await demo();
    expect(second).toMatchObject({ state: 'completed', partitions: 1528 });
    expect(second.backfillId).not.toBe(first.backfillId);
    expect(second.fingerprint).toBe(first.fingerprint);

    const warehouse = new SqliteWarehouse(join(home, 'warehouse.db'));
    try {
      const checksums = async (backfillId: string) =>
        new Map((await warehouse.ledger({ backfillId })).map((row) => [`${row.node}/${row.partition}`, row.checksum]));
      const a = await checksums(first.backfillId);
      const b = await checksums(second.backfillId);
      expect(a.size).toBe(1528);
      expect(b).toEqual(a);
      // Each run wrote its own version: the second is the current one, the first is kept for rollback.
      const history = await warehouse.ledger({ node: 'weekly_revenue', partition: '2024-W10' });
      expect(history.map((r) => [r.version, r.current])).toEqual([[2, true], [1, false]]);
      expect(history[0]!.rowCount).toBeGreaterThan(0);
    } finally {
      await warehouse.close();
    }
  });

  it('stopped by SIGTERM, stops its dev server and worker too', async () => {
    const home = scratch('demo-stopped');
    /** Processes whose command line names this home (the dev server's database is there). */
    const using = () =>
      readdirSync('/proc')
        .filter((pid) => /^\d+$/.test(pid))
        .filter((pid) => {
          try {
            return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(home);
          } catch {
            return false;
          }
        });
    const demo = spawn('node', [BIN, 'demo'], { env: { ...process.env, BACKFILL_HOME: home, NO_COLOR: '1' }, cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    demo.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    await waitFor('the demo to start its backfill', () => stderr.includes('started'), 120_000);
    expect(using().length).toBeGreaterThan(0);
    demo.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(stderr).toContain('SIGTERM: stopping the dev server and the worker');
    await waitFor('no process of the demo left', () => using().length === 0, 30_000);
  });
});
