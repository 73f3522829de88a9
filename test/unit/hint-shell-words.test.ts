/**
 * Commands the program prints for a user to copy, with values nobody vetted in them (a spec's task
 * queue, a workflow's queue read from the server, another backfill's id): pasted into a POSIX
 * shell, each value comes back as exactly one argument, and the command gets the options it shows.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { workerCommand as workerCli } from '../../client/commands/worker.ts';
import { datasetsBusy } from '../../client/dataset-writers.ts';
import { printable, printableLines, terminalText } from '../../client/printable.ts';
import { renderWaiting } from '../../client/render.ts';
import { noAnswerError, noWorkerError } from '../../client/status-errors.ts';
import { workerCommand } from '../../client/worker-hint.ts';
import { signAgain } from '../../core/approval.ts';
import type { Progress } from '../../core/protocol.ts';
import { shellArgs } from '../shell-words.ts';

// Each would create PWNED if a shell ran it: none may (the words run through a real shell below).
const DIR = mkdtempSync(join(tmpdir(), 'hint-shell-words-'));
const PWNED = join(DIR, 'pwned');
afterEach(() => {
  const ran = existsSync(PWNED);
  rmSync(PWNED, { force: true });
  expect(ran, 'a pasted hint ran a command').toBe(false);
});
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

const HOSTILE = [`q; touch ${PWNED} | sh`, `$(touch ${PWNED})`, `\`touch ${PWNED}\``, "it's", 'a b\tc', `x\n; touch ${PWNED}`];

/** The text between `before` and the next `after` in `text`. */
function between(text: string, before: string, after: string): string {
  const start = text.indexOf(before);
  expect(start, `${before} in ${text}`).toBeGreaterThanOrEqual(0);
  const end = text.indexOf(after, start + before.length);
  expect(end, `${after} in ${text}`).toBeGreaterThan(start);
  return text.slice(start + before.length, end);
}

describe('the worker command a start prints', () => {
  it('gives the worker every queue and transforms module as they are, and no option a queue name spells', () => {
    const queues = ['backfill', `q; touch ${PWNED} | sh`, `$(touch ${PWNED})`, "it's", '--warehouse=postgres://evil/x', '-x'];
    const modules = ['/work/p/my transforms/$(id).ts', "/work/p/it's.ts"];
    const line = workerCommand({ nodes: queues.map((taskQueue) => ({ taskQueue })) }, modules, '/work/p');
    expect(line.startsWith('backfill worker ')).toBe(true);
    expect(terminalText(line)).toBe(line);
    const args = shellArgs(line.slice('backfill worker '.length));
    const shown = ['./my transforms/$(id).ts', "./it's.ts"];
    expect(args).toEqual(['--transforms', ...shown, '--task-queue', ...queues.slice(0, 4), '--task-queue', queues[4], '--task-queue', queues[5]]);
    // What the worker's own parser makes of the pasted words: the queues, the modules, nothing else.
    const cli = workerCli();
    cli.parseOptions(args);
    const options = cli.opts();
    expect(options.taskQueue).toEqual(queues);
    expect(options.transforms).toEqual(shown);
    expect(options.warehouse).toBeUndefined();
  });

  it('stays as it was for plain names', () => {
    expect(workerCommand({ nodes: [{ taskQueue: 'backfill' }, { taskQueue: 'warehouse-eu' }] }, ['/work/p/t.ts'], '/work/p')).toBe('backfill worker --transforms ./t.ts --task-queue backfill warehouse-eu');
  });
});

describe("status's worker command for a workflow queue nobody polls", () => {
  it('gives back the queue read from the server as one argument, with no control character shown raw', () => {
    for (const queue of HOSTILE) {
      for (const error of [noWorkerError('b', queue), noAnswerError('b', queue)]) {
        const shown = printableLines(error.message);
        expect(shown).toBe(error.message);
        expect(shown).not.toContain('\n');
        const command = between(shown, "start one with 'backfill worker ", ' --transforms <');
        expect(shellArgs(command, 'bash')).toEqual(['--workflow-queue', queue]);
        if (!queue.includes('\n') && !queue.includes('\t')) expect(shellArgs(command)).toEqual(['--workflow-queue', queue]);
      }
    }
  });
});

describe('the worker command of a node waiting on a queue', () => {
  it('gives back the queue as one argument', () => {
    const progress = { backfillId: 'b', state: 'running', paused: false, nodes: [{ id: 'orders', running: 1, pending: 1 }] } as unknown as Progress;
    for (const taskQueue of HOSTILE.slice(0, 4)) {
      const [line] = renderWaiting(printable({ ...progress, waiting: [{ node: 'orders', taskQueue, reason: 'no_worker' as const, lastPollAt: null }] })).map((l) => stripVTControlCharacters(l));
      const marker = "start a worker with 'backfill worker ";
      const command = line!.slice(line!.indexOf(marker) + marker.length, -1);
      expect(shellArgs(command)).toEqual(['--no-workflows', '--task-queue', taskQueue]);
    }
  });
});

describe('the commands a start refused for busy datasets names', () => {
  it("gives back the other backfill's id, read from the server, as one argument", () => {
    for (const id of HOSTILE.slice(0, 4)) {
      const message = datasetsBusy('new', [{ backfillId: id, datasets: ['orders'] }]).message;
      expect(shellArgs(between(message, "('backfill wait ", "'; a staged"))).toEqual([id]);
      expect(shellArgs(between(message, "'backfill status ", "' says which"))).toEqual([id]);
      expect(shellArgs(between(message, "('backfill cancel ", "'), or start"))).toEqual([id]);
    }
  });
});

describe('the command that signs a refused signed action again', () => {
  it("gives back the signed text's backfill id as one argument", () => {
    for (const backfillId of HOSTILE.slice(0, 4)) {
      for (const action of ['start', 'resume'] as const) {
        const command = signAgain({ action, backfillId, namespace: 'default', planHash: 'sha256:0', reason: 'r', signedAt: '2024-01-01T00:00:00Z' });
        const args = shellArgs(command.replace('<spec>', 'spec.yaml').replace('<your key>', 'key'));
        expect(args).toContain(backfillId);
        expect(args).toHaveLength(action === 'start' ? 8 : 5);
      }
    }
  });
});
