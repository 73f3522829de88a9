/** `backfill dev` killed outright (SIGKILL): the dev server it started outlives it, and the next `dev` on that database deals with it. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { NO_POLICY } from '../../client/commands/dev.ts';
import { freePort } from '../../host/dev-server.ts';
import { scratch, waitFor } from './helpers.ts';

const BIN = join(import.meta.dirname, '../../bin/backfill.js');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** Whether `pid` runs (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** `backfill dev --no-worker` (or with `worker`, with one) on `home` and the given ports, as a process; `ready` resolves once it says so. */
function startDev(home: string, port: number, uiPort: number, worker = false) {
  const dev = spawn('node', [BIN, 'dev', ...(worker ? [] : ['--no-worker']), '--port', String(port), '--ui-port', String(uiPort)], {
    env: { ...process.env, BACKFILL_HOME: home, NO_COLOR: '1', BACKFILL_WORKFLOW_BUNDLE: inject('workflowBundlePath') },
    cwd: home,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const output = { stderr: '' };
  dev.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
  cleanups.push(() => void (dev.exitCode === null && dev.signalCode === null && dev.kill('SIGKILL')));
  const ready = Promise.race([
    waitFor('backfill dev to be ready', () => output.stderr.includes('Ctrl-C to stop'), 90_000),
    exited.then((code) => Promise.reject(new Error(`backfill dev exited (${code}) before it was ready: ${output.stderr}`))),
  ]);
  return { dev, output, exited, ready };
}

/** The pid of the dev server the lock beside `home`'s database names. */
function lockedServer(home: string): number {
  const pid = (JSON.parse(readFileSync(join(home, 'temporal.db.lock'), 'utf8')) as { pid?: number }).pid;
  if (pid === undefined) throw new Error('the lock names no server yet');
  return pid;
}

describe('backfill dev after one killed with SIGKILL', () => {
  it('stops the dev server the killed one left running on its database, says so, and takes over its ports', async () => {
    const home = scratch('dev-killed');
    const [port, uiPort] = [await freePort(), await freePort()];
    const killed = startDev(home, port, uiPort);
    await killed.ready;
    const orphan = lockedServer(home);
    cleanups.push(() => void (alive(orphan) && process.kill(orphan, 'SIGKILL')));
    killed.dev.kill('SIGKILL');
    await killed.exited;
    // Nothing stopped it: the server runs in a process group of its own.
    expect(alive(orphan)).toBe(true);

    // Before, this one was refused: 'a dev server already uses .../temporal.db'.
    const next = startDev(home, port, uiPort);
    await next.ready;
    expect(next.output.stderr).toContain(`stopped the Temporal dev server (pid ${orphan}) that an earlier process left running on ${join(home, 'temporal.db')}`);
    expect(alive(orphan)).toBe(false);
    const server = lockedServer(home);
    expect(server).not.toBe(orphan);

    next.dev.kill('SIGTERM');
    await next.exited;
    await waitFor('the second dev server to stop', () => !alive(server), 30_000);
    expect(existsSync(join(home, 'temporal.db.lock'))).toBe(false);
  });
});

describe('backfill dev without a policy', () => {
  it('says so once, in a short line with the fix: its worker, the only one of its server, adds no warning of its own', async () => {
    const home = scratch('dev-no-policy');
    const [port, uiPort] = [await freePort(), await freePort()];
    const dev = startDev(home, port, uiPort, true);
    await dev.ready;
    expect(dev.output.stderr.split(NO_POLICY)).toHaveLength(2);
    expect(dev.output.stderr).not.toContain('no policy (--policy or BACKFILL_POLICY)');
    dev.dev.kill('SIGTERM');
    await dev.exited;
  }, 120_000);
});
