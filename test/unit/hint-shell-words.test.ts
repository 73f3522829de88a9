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
import proto from '@temporalio/proto';
import { checkNamespace, localConnection } from '../../client/connection.ts';
import { workerCommand as workerCli } from '../../client/commands/worker.ts';
import { datasetsBusy } from '../../client/dataset-writers.ts';
import { printable, printableLines, terminalText } from '../../client/printable.ts';
import { renderWaiting } from '../../client/render.ts';
import { registerSearchAttributes } from '../../client/search-attributes.ts';
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

describe('the temporal operator commands for a namespace', () => {
  const denied = (code: number) => Object.assign(new Error(`${code} refused`), { code });
  /** An operator service that lists `custom` (or refuses with `listCode`) and refuses to add any. */
  const operator = (custom: Record<string, number>, listCode?: number) =>
    ({
      operatorService: {
        listSearchAttributes: async () => {
          if (listCode !== undefined) throw denied(listCode);
          return { customAttributes: custom };
        },
        addSearchAttributes: async () => {
          throw denied(7);
        },
      },
    }) as unknown as Parameters<typeof registerSearchAttributes>[0];
  const failure = (promise: Promise<unknown>) => promise.then(() => expect.fail('expected a failure'), (e: unknown) => (e as Error).message);

  it('gives back the namespace as one argument in each command', async () => {
    const { IndexedValueType } = proto.temporal.api.enums.v1;
    for (const namespace of HOSTILE.slice(0, 4)) {
      const missing = await failure(checkNamespace({ workflowService: { describeNamespace: async () => { throw denied(5); } } }, { ...localConnection('127.0.0.1:7233'), namespace }));
      expect(shellArgs(between(missing, '(temporal operator namespace create ', '), or'))).toEqual(['--namespace', namespace]);
      const unknown = await failure(registerSearchAttributes(operator({}, 5), namespace));
      expect(shellArgs(between(unknown, '(temporal operator namespace create ', '), or'))).toEqual(['--namespace', namespace]);
      const admin = await failure(registerSearchAttributes(operator({}), namespace));
      const creates = between(admin, "'backfill setup', or ", '; on Temporal Cloud').split('; ');
      expect(creates).toHaveLength(3);
      for (const create of creates) expect(shellArgs(create.replace(/^temporal operator search-attribute create /, ''))).toEqual(['--namespace', namespace, '--name', expect.any(String), '--type', 'Keyword']);
      const wrong = await failure(registerSearchAttributes(operator({ BackfillId: IndexedValueType.INDEXED_VALUE_TYPE_TEXT }), namespace));
      expect(shellArgs(between(wrong, '(temporal operator search-attribute remove ', ') and run').replace('<name>', 'BackfillId'))).toEqual(['--namespace', namespace, '--name', 'BackfillId']);
    }
  });

  it('stays as it was for a plain namespace', async () => {
    const missing = await failure(checkNamespace({ workflowService: { describeNamespace: async () => { throw denied(5); } } }, localConnection('127.0.0.1:7233')));
    expect(missing).toContain('(temporal operator namespace create --namespace default), or');
    expect(await failure(registerSearchAttributes(operator({}), 'analytics.a1b2c'))).toContain('or temporal operator search-attribute create --namespace analytics.a1b2c --name BackfillId --type Keyword; temporal');
  });
});
