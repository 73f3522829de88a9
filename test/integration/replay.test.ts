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

const DIR = join(ROOT, 'test/replay/histories');

describe('replaying recorded histories', () => {
  // test/replay/histories/<recording>/<scenario>/*.binpb, one recording per workflow code version.
  const scenarios = readdirSync(DIR)
    .sort()
    .flatMap((recording) => readdirSync(join(DIR, recording)).sort().map((scenario) => join(recording, scenario)));

  it('has the representative scenarios in every recording', () => {
    for (const recording of readdirSync(DIR)) {
      expect(readdirSync(join(DIR, recording))).toEqual(expect.arrayContaining(['cancel', 'continue-as-new', 'control', 'failure-retry', 'restart', 'throttle']));
    }
    expect(scenarios.length).toBeGreaterThanOrEqual(6);
  });

  for (const scenario of scenarios) {
    it(`${scenario}: every run replays without nondeterminism`, async () => {
      process.env.BACKFILL_LOG_LEVEL ??= 'ERROR';
      installRuntime();
      const files = readdirSync(join(DIR, scenario)).filter((f) => f.endsWith('.binpb'));
      expect(files.length).toBeGreaterThan(0);
      const histories = files.map((file) => ({
        workflowId: `${scenario}/${file.split('--')[0]!}`,
        history: proto.temporal.api.history.v1.History.decode(readFileSync(join(DIR, scenario, file))),
      }));
      let replayed = 0;
      for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: scenario }, histories)) {
        expect(result.error, `${result.workflowId}: ${String(result.error)}`).toBeUndefined();
        replayed++;
      }
      expect(replayed).toBe(files.length);
    });
  }
});
