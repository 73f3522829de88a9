/** The task queues `backfill dev` polls, without a server (startLocal is replaced). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli, runCliWith } from './run-cli.ts';
import { specQueues, type LocalOptions } from '../../client/local.ts';
import { NO_POLICY } from '../../client/commands/dev.ts';

const started: LocalOptions[] = [];
/** What the worker's run() fails with (null: it ends), and how often the command stopped the stack. */
const stack = { failure: null as Error | null, stops: 0 };
vi.mock('../../client/local.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../client/local.ts')>()),
  startLocal: async (options: LocalOptions) => {
    started.push(options);
    return {
      address: `127.0.0.1:${options.port}`,
      uiUrl: options.uiPort == null ? null : `http://localhost:${options.uiPort}`,
      server: { options: { dbFile: 'temporal.db' } },
      worker: { warehouse: { location: 'memory' }, done: stack.failure ? Promise.reject(stack.failure) : Promise.resolve() },
      stop: async () => void (stack.stops += 1),
    };
  },
}));

const SPEC = `name: queues
partitions: { grain: day, start: 2024-01-01, end: 2024-01-03 }
nodes:
  - { id: a, transform: noop, taskQueue: warehouse }
  - { id: b, transform: noop, dependsOn: [a] }
`;

const home = process.cwd();
afterEach(() => {
  started.splice(0);
  stack.failure = null;
  stack.stops = 0;
  process.chdir(home);
});

describe('backfill dev: a fatal failure of its worker', () => {
  it('stops the worker and the Temporal dev server before the failure ends the command, and says what failed', async () => {
    const dir = project();
    try {
      stack.failure = new Error('native core failed: Poll failed');
      const result = await runCli('dev');
      expect(stack.stops).toBe(1);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('the worker failed: native core failed: Poll failed; stopping it and the Temporal dev server');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('backfill dev: a step after its start that fails', () => {
  it('stops the worker and the Temporal dev server, and says what failed and the fix', async () => {
    const dir = project();
    try {
      const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
      const result = await runCliWith({ stdoutError: epipe }, 'dev', '--json');
      expect(stack.stops).toBe(1);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(
        'could not finish starting: could not print the addresses on stdout (--json): write EPIPE (whatever read stdout closed it): keep stdout open while it runs (or send it to a file), or leave out --json; stopping it and the Temporal dev server',
      );
      // The worker was fine: the command's own step failed.
      expect(result.stderr).not.toContain('the worker failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function project(spec?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-dev-'));
  if (spec !== undefined) writeFileSync(join(dir, 'backfill.yaml'), spec);
  process.chdir(dir);
  return dir;
}

describe('backfill dev', () => {
  it("polls every task queue the nodes of ./backfill.yaml use, where --task-queue names none", async () => {
    const dir = project(SPEC);
    try {
      expect((await runCli('dev', '--json')).code).toBe(0);
      expect(started[0]!.queues).toEqual([{ name: 'backfill' }, { name: 'warehouse' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('polls what --task-queue names, else the default queue where there is no project spec', async () => {
    const dir = project();
    try {
      await runCli('dev', '--json');
      await runCli('dev', '--task-queue', 'other=5', '--json');
      expect(started.map((o) => o.queues)).toEqual([[{ name: 'backfill' }], [{ name: 'other', maxActivitiesPerSecond: 5 }]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('backfill dev: stopping', () => {
  it("gives running partitions backfill worker's shutdown grace, or --shutdown-grace", async () => {
    const dir = project();
    try {
      await runCli('dev', '--json');
      await runCli('dev', '--shutdown-grace', '5s', '--json');
      expect(started.map((o) => o.shutdownGraceMs)).toEqual([20_000, 5_000]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('backfill dev on other ports', () => {
  const exports = (text: string) => text.split('\n').filter((line) => /^\s*export /.test(line)).map((line) => line.trim());

  it('prints the export lines other terminals need to find its server and Web UI', async () => {
    const dir = project();
    try {
      const both = await runCli('dev', '--port', '7300', '--ui-port', '8300');
      expect(both.code).toBe(0);
      expect(exports(both.stderr)).toEqual(['export TEMPORAL_ADDRESS=127.0.0.1:7300', 'export BACKFILL_UI_URL=http://localhost:8300']);
      expect(exports((await runCli('dev', '--port', '7300')).stderr)).toEqual(['export TEMPORAL_ADDRESS=127.0.0.1:7300']);
      expect(exports((await runCli('dev', '--ui-port', '8300')).stderr)).toEqual(['export BACKFILL_UI_URL=http://localhost:8300']);
      expect(JSON.parse((await runCli('dev', '--port', '7300', '--json')).stdout).env).toEqual({ TEMPORAL_ADDRESS: '127.0.0.1:7300' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses --port and --ui-port (or --metrics-port) on the same port before starting anything, naming both flags', async () => {
    const dir = project();
    try {
      const same = await runCli('dev', '--port', '7533', '--ui-port', '7533', '--json');
      expect(same.code).not.toBe(0);
      expect(JSON.parse(same.stdout).error).toEqual({
        code: 'invalid_argument',
        message: '--port 7533 and --ui-port 7533 are the same port, and each needs its own: choose another, e.g. --ui-port 8533',
      });
      expect((await runCli('dev', '--port', '8233')).stderr).toContain('--port 8233 and --ui-port 8233 (its default) are the same port');
      expect((await runCli('dev', '--metrics-port', '8233')).stderr).toContain('--ui-port 8233 (its default) and --metrics-port 8233 are the same port');
      expect(started).toHaveLength(0);
      // With no worker, no metrics port, and a metrics host of another interface, no clash.
      expect((await runCli('dev', '--metrics-port', '8233', '--metrics-host', '10.1.2.3', '--json')).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says once that its worker runs without a policy, with the fix; nothing of it with --policy', async () => {
    const dir = project();
    try {
      const { stderr } = await runCli('dev');
      expect(stderr.split(NO_POLICY)).toHaveLength(2);
      expect(started[0]).toMatchObject({ worker: true });
      expect((await runCli('dev', '--policy', join(dir, 'policy.yaml'))).stderr).not.toContain('no policy');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("quiets its worker's own no-policy warning only where it says its own, and names the policy in JSON (null: none)", async () => {
    const dir = project();
    try {
      const ready = async (...args: string[]) => {
        const { stderr } = await runCli('dev', '--log-format', 'json', ...args);
        return stderr.split('\n').flatMap((line) => (line.includes('dev server ready') ? [JSON.parse(line) as Record<string, unknown>] : []));
      };
      expect(await ready()).toEqual([expect.objectContaining({ policy: null })]);
      expect(started[0]?.quietWithoutPolicy).toBe(true);
      const policy = join(dir, 'policy.yaml');
      expect(await ready('--policy', policy)).toEqual([expect.objectContaining({ policy })]);
      expect(started[1]?.quietWithoutPolicy).toBeUndefined();
      expect(JSON.parse((await runCli('dev', '--json')).stdout)).toMatchObject({ policy: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an empty --policy (BACKFILL_POLICY set to nothing) before it starts anything, as a worker does', async () => {
    const dir = project();
    try {
      const { code, stderr } = await runCli('dev', '--policy', '  ');
      expect(code).not.toBe(0);
      expect(stderr).toContain('--policy (or BACKFILL_POLICY) is empty');
      expect(started).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints none on the default ports, where other terminals find it unaided', async () => {
    const dir = project();
    try {
      const { stderr } = await runCli('dev');
      expect(stderr).toContain('Temporal dev server on 127.0.0.1:7233');
      expect(exports(stderr)).toEqual([]);
      expect(JSON.parse((await runCli('dev', '--json')).stdout).env).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('specQueues', () => {
  it("lists each queue once, the default (the workflows') first", () => {
    expect(specQueues({ nodes: [{ taskQueue: 'b' }, { taskQueue: 'backfill' }, { taskQueue: 'b' }, { taskQueue: 'a' }] }).map((q) => q.name)).toEqual(['backfill', 'b', 'a']);
  });
});
