/**
 * The Web UI link `start` prints: under BACKFILL_UI_URL when it is set; none (`uiUrl: null`, and
 * a line saying how to set one) for a server whose Web UI the command line does not know, such as
 * this suite's dev server, which `backfill dev` did not start. The link to the Web UI of a dev
 * server `backfill dev` runs is tested with `backfill dev` itself (cli.test.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, scratch, startTestWorker, uniqueQueue, type TestWorker } from './helpers.ts';

describe('the Web UI link of start', () => {
  const queue = uniqueQueue('web-ui-link');
  let worker: TestWorker;
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = scratch('web-ui-link');
    worker = await startTestWorker({ queue, warehousePath: join(dir, 'warehouse.db') });
    file = join(dir, 'spec.json');
    writeFileSync(file, JSON.stringify({ name: 'web-ui-link', partitions: { keys: ['a'] }, defaults: { taskQueue: queue }, nodes: [{ id: 'only', transform: 'noop' }] }));
  });
  afterAll(async () => {
    await worker?.stop();
  });
  // A home of its own: no dev server of backfill's runs there.
  const env = () => ({ BACKFILL_TASK_QUEUE: queue, BACKFILL_HOME: join(dir, 'home'), BACKFILL_UI_URL: '' });

  it('is none for a server whose Web UI is not known: JSON says null, the text says once how to set one', async () => {
    const json = await runCli<{ backfillId: string; uiUrl: string | null }>(['start', file, '--id', `web-ui-none-${Date.now()}`, '--json'], env());
    expect(json.code, json.stderr).toBe(0);
    expect(json.json).toMatchObject({ uiUrl: null });

    const text = await runCli(['start', file, '--id', `web-ui-none-text-${Date.now()}`], env());
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toMatch(/http:\/\/localhost:8233/);
    expect(text.stdout.match(/web UI: not known for this server \(to link to it, set BACKFILL_UI_URL/g)).toHaveLength(1);
  });

  it('is under BACKFILL_UI_URL when it is set', async () => {
    const id = `web-ui-set-${Date.now()}`;
    const { code, stderr, json } = await runCli<{ runId: string; uiUrl: string | null }>(['start', file, '--id', id, '--json'], { ...env(), BACKFILL_UI_URL: 'https://temporal-ui.example/' });
    expect(code, stderr).toBe(0);
    expect(json?.uiUrl).toBe(`https://temporal-ui.example/namespaces/default/workflows/${encodeURIComponent(`backfill/${id}`)}/${json?.runId}/history`);
  });
});
