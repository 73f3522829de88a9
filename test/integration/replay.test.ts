/**
 * Replay safety: the recorded histories of representative backfills (test/replay/histories,
 * made by scripts/record-histories.ts) must replay against the current workflow code. A
 * change that would break a running backfill fails here; put it behind `patched()`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { installRuntime } from '../../client/local.ts';
import { ROOT } from './helpers.ts';
import { recordedWorkflowIds } from '../replay/workflow-ids.ts';

const DIR = join(ROOT, 'test/replay/histories');

describe('replaying recorded histories', () => {
  // test/replay/histories/<recording>/<scenario>/*.binpb, one recording per workflow code version.
  const recordings = readdirSync(DIR).sort();

  it('has the representative scenarios in every recording', () => {
    for (const recording of recordings) {
      expect(readdirSync(join(DIR, recording))).toEqual(expect.arrayContaining(['cancel', 'continue-as-new', 'control', 'failure-retry', 'restart', 'throttle']));
    }
    expect(recordings.length).toBeGreaterThanOrEqual(1);
  });

  // One replay worker per recording (a worker per scenario spent most of the test starting workers); each failure names its scenario and run.
  for (const recording of recordings) {
    it(`${recording}: every run of every scenario replays without nondeterminism`, async () => {
      process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
      installRuntime();
      const histories = readdirSync(join(DIR, recording))
        .sort()
        .flatMap((scenario) => {
          const files = readdirSync(join(DIR, recording, scenario)).filter((f) => f.endsWith('.binpb'));
          expect(files.length, `${recording}/${scenario} has no history`).toBeGreaterThan(0);
          const ids = recordedWorkflowIds(join(DIR, recording, scenario));
          return files.map((file) => ({
            workflowId: ids[file] ?? `${recording}/${scenario}/${file.split('--')[0]!}`,
            file: `${recording}/${scenario}/${file}`,
            history: proto.temporal.api.history.v1.History.decode(readFileSync(join(DIR, recording, scenario, file))),
          }));
        });
      const failed: string[] = [];
      let replayed = 0;
      // In turn, so that each result is the history of the same place in the list (several may share a workflow id).
      const results = Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: recording }, histories);
      for await (const result of results) {
        if (result.error !== undefined) failed.push(`${histories[replayed]!.file} (${result.workflowId}): ${String(result.error)}`);
        replayed++;
      }
      expect(failed).toEqual([]);
      expect(replayed).toBe(histories.length);
    });
  }

  // `temporal workflow reset` to a point after a signed start's admission: the reset run replays the recorded answers (the
  // runs listed, the warehouse's claim) under a run id of its own. Recordings from core2-u on decide whose a claim is in
  // the activity; before, the run took the claim for another run's and failed with a nondeterminism error.
  it('a signed start reset to after its admission replays under its new run id', async () => {
    process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
    installRuntime();
    const recording = recordings.filter((r) => r >= 'core2-u').at(-1)!;
    const dir = join(DIR, recording, 'governed');
    const ids = recordedWorkflowIds(dir);
    const file = readdirSync(dir).find((f) => f.endsWith('.binpb') && ids[f] === 'backfill/governed')!;
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(join(dir, file)));
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    // The signed start claimed its signature: the answer the reset run replays.
    expect(history.events!.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'claimSignature')).toBe(true);
    started.originalExecutionRunId = '01a249bd-0000-7000-8000-00000000a5e7';
    await expect(Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: 'reset' }, history, 'backfill/governed')).resolves.toBeUndefined();
  });
});
