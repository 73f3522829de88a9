import { resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RangeSet } from '../../core/ranges.ts';
import { expandPlan, planSummary } from '../../core/plan.ts';
import type { BackfillCarry, NodeProgress, Progress } from '../../core/protocol.ts';
import { resolveSpec } from '../../core/spec.ts';
import { defaultBackfillId, type BackfillClient } from '../../client/backfill-client.ts';
import { resumeCarry, resumedSpec } from '../../core/coordinator.ts';
import { BackfillError } from '../../core/errors.ts';
import { EXIT, buildProgram, exitCodeFor } from '../../client/cli.ts';
import { transformsGiven } from '../../client/options.ts';
import { parseQueues, transformModules } from '../../client/local.ts';
import { printable } from '../../client/printable.ts';
import { withDiscardAfterEnd, withoutLiveHolds } from '../../core/ended-status.ts';
import { activityFailing } from '../../client/activity-failing.ts';
import { barPayload, headline, renderEnd, renderFailures, renderWaited, renderGovernance, renderPlan, renderRollback, renderStatus, withBackfillId } from '../../client/render.ts';
import type { StatusRollback } from '../../core/rollback.ts';
import { notPausedText } from '../../client/commands/resume.ts';
import type { GovernanceView } from '../../core/governance.ts';
import type { AuditEntry } from '../../core/audit.ts';
import type { CanaryView } from '../../core/canary.ts';

const plain = (text: string) => stripVTControlCharacters(text);

describe('defaultBackfillId', () => {
  const at = new Date('2024-03-01T05:06:07.890Z');

  it('is the slug of the name and the UTC start time', () => {
    expect(defaultBackfillId('shop', at)).toBe('shop-20240301-050607Z');
  });

  it('is deterministic for a given date', () => {
    expect(defaultBackfillId('Daily Revenue', at)).toBe(defaultBackfillId('Daily Revenue', new Date(at.getTime())));
    expect(defaultBackfillId('Daily Revenue', at)).not.toBe(defaultBackfillId('Daily Revenue', new Date(at.getTime() + 1000)));
  });

  it('lowercases, turns runs of other characters into one dash and trims dashes', () => {
    expect(defaultBackfillId('  Daily Revenue (EU)!! ', at)).toBe('daily-revenue-eu-20240301-050607Z');
    expect(defaultBackfillId('a.b_c-d', at)).toBe('a.b_c-d-20240301-050607Z');
  });

  it('falls back to "backfill" when nothing of the name is usable', () => {
    expect(defaultBackfillId('!!!', at)).toBe('backfill-20240301-050607Z');
    expect(defaultBackfillId('', at)).toBe('backfill-20240301-050607Z');
  });

  it('is a valid id for a name that starts with . or _, or is long (start refused it as an --id the user never gave)', () => {
    expect(defaultBackfillId('_shop', at)).toBe('shop-20240301-050607Z');
    expect(defaultBackfillId('.hidden_2024', at)).toBe('hidden_2024-20240301-050607Z');
    const long = defaultBackfillId(`${'a'.repeat(159)} b`, at);
    expect(long).toBe(`${'a'.repeat(159)}-20240301-050607Z`);
    for (const id of [long, defaultBackfillId('x'.repeat(500), at), defaultBackfillId('._-', at)]) expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/);
  });

  it('uses UTC whatever the time zone, and is a valid backfill id', () => {
    const id = defaultBackfillId('x', new Date(Date.UTC(2023, 11, 31, 23, 59, 59)));
    expect(id).toBe('x-20231231-235959Z');
    expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/);
  });
});

/** A range set's JSON, from [start, end) pairs. */
const r = (...pairs: Array<[number, number]>) => RangeSet.of(...pairs).toJSON();

describe('resumeCarry', () => {
  const carry: BackfillCarry = {
    runKey: 'run-1',
    readiness: {
      a: { done: r([0, 3]), failed: r([3, 4]), inHands: r([4, 5]) },
      b: { done: r([0, 2]), failed: '', inHands: r([2, 3]) },
    },
    childrenRunning: true,
    paused: false,
    limits: { rate: 5, concurrency: 2 },
    overrides: { a: { rate: 1 } },
    reports: {},
    failures: { a: [{ message: 'boom', type: 'Error', ranges: r([3, 4]) }] },
    outbox: { b: { ready: r([2, 3]), settingsDirty: true } },
    settings: { a: { seq: 3, rate: 1, burst: 1, concurrency: 2, paused: false } },
    restarts: { a: 1 },
    startedAt: 1000,
    runs: 2,
  };

  it('keeps what is done and forgets failures, partitions in hands, the outbox, settings and restarts', () => {
    const resumed = resumeCarry(carry);
    expect(resumed.readiness).toEqual({ a: { done: r([0, 3]) }, b: { done: r([0, 2]) } });
    expect(resumed.readiness.a).not.toHaveProperty('inHands');
    expect(resumed.restarts).toEqual({});
    expect(resumed.childrenRunning).toBe(false);
    expect(resumed.failures).toEqual({});
    expect(resumed.outbox).toEqual({});
    expect(resumed.settings).toEqual({});
  });

  it('keeps the identity and the operator limits of the backfill', () => {
    const resumed = resumeCarry(carry);
    expect(resumed.runKey).toBe('run-1');
    expect(resumed.limits).toEqual({ rate: 5, concurrency: 2 });
    expect(resumed.overrides).toEqual({ a: { rate: 1 } });
    expect(resumed.startedAt).toBe(1000);
  });

  it('does not modify the carry it is given', () => {
    const before = structuredClone(carry);
    resumeCarry(carry);
    expect(carry).toEqual(before);
  });

  // The new run takes the carried spec as its input's, where the policy judges it.
  const started = resolveSpec({ name: 's', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop', params: { v: 1 } }] });
  const fixed = resolveSpec({ name: 's', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop', params: { v: 2 } }] });

  it('leaves out the spec a new spec (resume --spec) put in place of the input\'s', () => {
    expect(resumeCarry({ ...carry, spec: fixed })).not.toHaveProperty('spec');
  });

  it('goes on with the carried spec, else (a run that kept its input\'s, or a worker from before it was carried) the input\'s', () => {
    expect(resumedSpec({ ...carry, spec: fixed }, started)).toEqual(fixed);
    expect(resumedSpec(carry, started)).toBe(started);
  });

  it('refuses a carried spec that is not a resolved spec (another build\'s, or one made by hand), naming the field and what to do', () => {
    const { retry: _dropped, ...node } = fixed.nodes[0]!;
    for (const [spec, field] of [
      ['x', /carry\.spec must be object/],
      [{ ...fixed, nodes: [node] }, /carry\.spec\.nodes\[0\]\.retry/],
      [{ ...fixed, nodes: [] }, /carry\.spec\.nodes/],
    ] as const) {
      let thrown: unknown;
      try {
        resumedSpec({ ...carry, spec: spec as unknown as typeof fixed }, started);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(BackfillError);
      expect((thrown as BackfillError).code).toBe('invalid_spec');
      expect((thrown as BackfillError).message).toMatch(field);
      expect((thrown as BackfillError).message).toMatch(/backfill resume <id> --spec <file>.*backfill start <spec> --id <id> --rerun/);
    }
  });
});

describe('parseQueues', () => {
  it('uses the fallback queue when no flag is given', () => {
    expect(parseQueues(undefined, 'backfill')).toEqual([{ name: 'backfill' }]);
    expect(parseQueues([], 'backfill')).toEqual([{ name: 'backfill' }]);
  });

  it('reads a name, or a name and a rate', () => {
    expect(parseQueues(['q'], 'backfill')).toEqual([{ name: 'q' }]);
    expect(parseQueues(['q=5'], 'backfill')).toEqual([{ name: 'q', maxActivitiesPerSecond: 5 }]);
    expect(parseQueues(['warehouse=0.5', 'api'], 'backfill')).toEqual([
      { name: 'warehouse', maxActivitiesPerSecond: 0.5 },
      { name: 'api' },
    ]);
  });

  it('refuses a rate that is not above 0', () => {
    expect(() => parseQueues(['q=0'], 'backfill')).toThrow(/'q=0'.*above 0/);
    expect(() => parseQueues(['q=-2'], 'backfill')).toThrow(/above 0/);
    expect(() => parseQueues(['q=fast'], 'backfill')).toThrow(/above 0/);
    expect(() => parseQueues(['q='], 'backfill')).toThrow(/above 0/);
  });

  it('refuses an entry without a name', () => {
    expect(() => parseQueues(['=3'], 'backfill')).toThrow(/'=3'.*name or name=maxActivitiesPerSecond/);
  });

  it('refuses a name Temporal reserves, naming the flag, the prefix and the fix', () => {
    expect(() => parseQueues(['warehouse', '__temporal_x=5'], 'backfill')).toThrow(
      "--task-queue '__temporal_x' starts with __temporal_, which Temporal reserves for its own task queues: choose a name without that prefix",
    );
    expect(() => parseQueues(['/_sys/q'], 'backfill')).toThrow(/--task-queue '\/_sys\/q' starts with \/_sys\//);
  });
});

describe('transform modules (--transforms, else $BACKFILL_TRANSFORMS)', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.BACKFILL_TRANSFORMS;
    delete process.env.BACKFILL_TRANSFORMS;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.BACKFILL_TRANSFORMS;
    else process.env.BACKFILL_TRANSFORMS = saved;
  });

  /** The modules `backfill worker <args>` would load, with `/fallback.ts` where none are named. */
  async function modulesOf(...args: string[]): Promise<string[]> {
    const program = await buildProgram();
    const worker = program.commands.find((c) => c.name() === 'worker')!;
    let modules: string[] = [];
    worker.action(function () {
      modules = transformModules(transformsGiven(this, this.opts().transforms as string[] | undefined), ['/fallback.ts']);
    });
    await program.parseAsync(['node', 'backfill', 'worker', ...args]);
    return modules;
  }

  it('uses the fallback when there are neither flags nor $BACKFILL_TRANSFORMS', async () => {
    expect(await modulesOf()).toEqual(['/fallback.ts']);
    expect(transformModules([])).toEqual([]);
  });

  it('reads $BACKFILL_TRANSFORMS (comma-separated, trimmed, empty entries dropped) over the fallback', async () => {
    process.env.BACKFILL_TRANSFORMS = ' env/one.ts, ,/abs/two.ts,';
    expect(await modulesOf()).toEqual([resolve('env/one.ts'), '/abs/two.ts']);
  });

  it('ignores an empty $BACKFILL_TRANSFORMS', async () => {
    process.env.BACKFILL_TRANSFORMS = ' , ';
    expect(await modulesOf()).toEqual(['/fallback.ts']);
  });

  it('prefers flags over $BACKFILL_TRANSFORMS and the fallback, resolved from the working directory', async () => {
    process.env.BACKFILL_TRANSFORMS = 'env/one.ts';
    expect(await modulesOf('--transforms', 'flag/a.ts', '/abs/b.ts')).toEqual([resolve('flag/a.ts'), '/abs/b.ts']);
    expect(await modulesOf('--transforms', 'flag/a.ts', '--transforms', 'c,d.ts')).toEqual([resolve('flag/a.ts'), resolve('c,d.ts')]);
  });
});

describe('exitCodeFor', () => {
  it('maps every state to its exit code', () => {
    expect(exitCodeFor('completed')).toBe(0);
    expect(exitCodeFor('completed_with_failures')).toBe(2);
    expect(exitCodeFor('failed')).toBe(3);
    expect(exitCodeFor('cancelled')).toBe(3);
    expect(exitCodeFor('running')).toBe(0);
  });

  it('a staged backfill with failed or blocked partitions exits 2, as one that completed with failures: publishing it would leave them out', () => {
    expect(exitCodeFor('staged', { failed: 0, blocked: 0 })).toBe(EXIT.ok);
    expect(exitCodeFor('staged', { failed: 2, blocked: 1 })).toBe(EXIT.failures);
    expect(exitCodeFor('staged', { failed: 0, blocked: 3 })).toBe(EXIT.failures);
    expect(exitCodeFor('completed', { failed: 0, blocked: 0 })).toBe(EXIT.ok);
  });

  it('agrees with the EXIT table', () => {
    expect(EXIT).toEqual({ ok: 0, error: 1, failures: 2, notCompleted: 3 });
    expect(exitCodeFor('completed_with_failures')).toBe(EXIT.failures);
    expect(exitCodeFor('cancelled')).toBe(EXIT.notCompleted);
  });
});

describe('renderPlan', () => {
  const summary = planSummary(
    expandPlan(
      resolveSpec({
        name: 'shop',
        partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-15' },
        nodes: [
          { id: 'orders', transform: 'noop' },
          { id: 'rolling', transform: 'noop', dependsOn: [{ node: 'orders', mapping: { lag: { from: -6, to: 0 } } }] },
          { id: 'weekly', transform: 'sleep', partitions: { grain: 'week' }, dependsOn: ['orders'] },
        ],
      }),
    ),
  );
  const text = plain(renderPlan(summary));

  it('names the backfill and its totals', () => {
    expect(summary.totalPartitions).toBe(30);
    expect(text.split('\n')[0]).toBe('shop: 30 partitions in 3 nodes');
    expect(text).toContain('critical path: 2 partitions · max width: 16 partitions at once');
  });

  it('has a row per node with its grain, partitions, first and last keys, transform and dependencies', () => {
    const cells = (id: string) =>
      text
        .split('\n')
        .map((line) => line.split(/[│|]/).map((c) => c.trim()).filter(Boolean))
        .find((c) => c[0] === id);
    expect(cells('node')).toEqual(['node', 'grain', 'partitions', 'first', 'last', 'transform', 'depends on']);
    expect(cells('orders')).toEqual(['orders', 'day', '14', '2024-01-01', '2024-01-14', 'noop', '–']);
    expect(cells('rolling')).toEqual(['rolling', 'day', '14', '2024-01-01', '2024-01-14', 'noop', 'orders (lag(-6..0))']);
    expect(cells('weekly')).toEqual(['weekly', 'week', '2', '2024-W01', '2024-W02', 'sleep', 'orders (window)']);
  });

  it('formats large counts with thousands separators', () => {
    const big = planSummary(
      expandPlan(resolveSpec({ name: 'big', partitions: { grain: 'hour', start: '2024-01-01', end: '2024-03-01' }, nodes: [{ id: 'h', transform: 'noop' }] })),
    );
    expect(plain(renderPlan(big))).toContain('big: 1,440 partitions in 1 node');
  });
});

function nodeProgress(fields: Partial<NodeProgress> & { id: string }): NodeProgress {
  return {
    total: 0,
    done: 0,
    running: 0,
    failed: 0,
    blocked: 0,
    pending: 0,
    rate: null,
    concurrency: 4,
    throttles: 0,
    throughput: null,
    etaSeconds: null,
    failures: [],
    ...fields,
  };
}

function progress(fields: Partial<Progress> = {}): Progress {
  const nodes = [
    nodeProgress({ id: 'orders_raw', total: 1200, done: 1100, running: 4, failed: 6, pending: 90, rate: 2.5, throttles: 3, throughput: 12.34, etaSeconds: 7.5 }),
    nodeProgress({
      id: 'daily_revenue',
      total: 1200,
      done: 900,
      failed: 0,
      blocked: 6,
      pending: 294,
      concurrency: 8,
      failures: [],
    }),
  ];
  nodes[0]!.failures = [
    { message: 'injected failure', type: 'Error', partitions: 5, examples: ['2024-01-01', '2024-01-02', '2024-01-03'] },
    { message: 'bad sql', type: 'SqlError', partitions: 1, examples: ['2024-02-01'] },
  ];
  return {
    backfillId: 'shop-1',
    name: 'shop',
    state: 'running',
    paused: false,
    rate: null,
    concurrency: null,
    total: 2400,
    done: 2000,
    running: 4,
    failed: 6,
    blocked: 6,
    pending: 384,
    throughput: 20,
    etaSeconds: 19.2,
    runs: 1,
    nodes,
    ...fields,
  };
}

describe('headline', () => {
  it('shows id, state, done/total, throughput, ETA and limits', () => {
    expect(plain(headline(printable(progress())))).toBe(
      'shop-1 running · 2,000/2,400 done · 20.0/s · ETA 19.2s · rate unlimited · concurrency per node',
    );
  });

  it('marks a paused running backfill and shows backfill-wide limits', () => {
    const text = plain(headline(printable(progress({ paused: true, rate: 1.234, concurrency: 3, throughput: null, etaSeconds: null }))));
    // Shared by its nodes (the table's rates are their shares).
    expect(text).toBe('shop-1 running (paused) · 2,000/2,400 done · – · ETA – · rate 1.23/s shared · concurrency 3');
    expect(plain(headline(printable(progress({ rate: 5, nodes: progress().nodes.slice(0, 1) }))))).toContain('rate 5/s · concurrency');
  });

  it('does not mark a finished backfill as paused', () => {
    expect(plain(headline(printable(progress({ state: 'cancelled', paused: true }))))).toMatch(/^shop-1 cancelled · /);
  });

  it('shows no throughput while paused or held, as no ETA, nowhere the progress shows: the pace from before is none of now', () => {
    // What the progress query says while paused: the throughput achieved before the pause, no ETA.
    const paused = progress({ paused: true, etaSeconds: null, nodes: progress().nodes.map((n) => ({ ...n, etaSeconds: null })) });
    expect(plain(headline(printable(paused)))).toBe('shop-1 running (paused) · 2,000/2,400 done · – · ETA – · rate unlimited · concurrency per node');
    const raw = plain(renderStatus(paused)).split('\n').find((l) => l.includes('orders_raw') && !l.includes('✗'))!;
    expect(raw).not.toContain('12.3/s');
    expect(plain(barPayload(paused.nodes[0]!, paused).details)).toBe('1,100/1,200 · 4 running · 6 failed · – · ETA – · throttled ×3, now 2.5/s');
    expect(plain(headline(printable(progress({ state: 'waiting_for_window', etaSeconds: null }))))).toContain('done · – ·');
    // Running, or ended (a pause left over), the figure shows.
    expect(plain(barPayload(progress().nodes[0]!, progress()).details)).toContain('12.3/s');
    expect(plain(headline(printable(progress({ state: 'cancelled', paused: true }))))).toContain('done · 20.0/s');
  });
});

describe('renderFailures', () => {
  it('prints one line per failure group, with examples and how many more', () => {
    expect(renderFailures(printable(progress())).map(plain)).toEqual([
      '  ✗ orders_raw: 5 failed (2024-01-01, 2024-01-02, 2024-01-03 and 2 more): injected failure',
      '  ✗ orders_raw: 1 failed (2024-02-01): bad sql',
    ]);
  });

  it('prints nothing without failures', () => {
    expect(renderFailures(printable(progress({ nodes: [nodeProgress({ id: 'a', total: 1, done: 1 })] })))).toEqual([]);
  });

  it('after a backfill that completed with failures, status, wait and start --watch say what to do next', () => {
    const ended = progress({ state: 'completed_with_failures' });
    const next = "  next: fix the cause, then 'backfill retry-failed shop-1' runs the failed partitions and those they blocked (with --spec <file> when the fix is in the spec)";
    // orders_raw published partitions while daily_revenue's are blocked: the datasets disagree, said before the next step.
    const mixed = "  ⚠ datasets may disagree: this backfill published orders_raw 1100, but the failed or blocked partitions of daily_revenue 6 keep their older versions, made from the upstream data as it was (the same data where the new upstream versions changed nothing: their checksums in 'backfill lineage <node> <partition>' tell); 'backfill retry-failed shop-1' completes them, 'backfill rollback shop-1' undoes the backfill";
    expect(plain(renderStatus(ended)).split('\n').slice(-4)).toEqual([...renderFailures(printable(ended)).map(plain), mixed, next]);
    expect(plain(renderEnd(ended)).split('\n').at(-1)).toBe(next);
    // While it runs, or once it completed, there is nothing to retry yet.
    expect(plain(renderStatus(progress()))).not.toContain('retry-failed');
  });
});

describe("status: a step of the backfill's own workflow that keeps failing", () => {
  const pending = (attempt: number, message: string, type = 'Error') => [
    { activityType: { name: 'warehouseIdentity' }, attempt, lastFailure: { message, applicationFailureInfo: { type } } },
  ];
  const denied = 'IO Error: Cannot open file "/lake/_backfill/catalog.duckdb": Permission denied';

  it('is named once it failed twice, with its last error: a lake the workers cannot write kept status at 0 done and silent', () => {
    const failing = activityFailing(pending(9, denied));
    expect(failing).toEqual({ activity: 'warehouseIdentity', attempt: 9, message: denied });
    const text = plain(renderStatus({ ...progress(), activityFailing: failing! }));
    expect(text).toContain(`⚠ its step warehouseIdentity has failed 8 times and is being retried; what needs it waits: ${denied}`);
  });

  it('is not news after one failure, nor when a policy only declines to judge (status says that as not admitted yet)', () => {
    expect(activityFailing(pending(2, denied))).toBeUndefined();
    expect(activityFailing(pending(9, 'this worker has no policy', 'PolicyMismatch'))).toBeUndefined();
    expect(activityFailing([{ activityType: { name: 'leaseDatasets' }, attempt: 1 }])).toBeUndefined();
    expect(activityFailing(undefined)).toBeUndefined();
    expect(plain(renderStatus(progress()))).not.toContain('its step');
  });
});

describe('renderWaited', () => {
  it('a backfill the server ended, whose progress no worker told: its state with how it ended, as status says it', () => {
    expect(renderWaited({ backfillId: 'shop-1', state: 'timed_out', progress: null })).toBe('shop-1 timed out (its workflow timeout: its cleanup did not run)');
    expect(renderWaited({ backfillId: 'shop-1', state: 'terminated', progress: null })).toBe('shop-1 terminated (through Temporal: its cleanup did not run)');
    expect(renderWaited({ backfillId: 'shop-1', state: 'cancelled', progress: null })).toBe('shop-1 cancelled');
  });

  it('with progress: as renderEnd', () => {
    const ended = progress({ state: 'completed_with_failures' });
    expect(renderWaited({ backfillId: 'shop-1', state: ended.state, progress: ended })).toBe(renderEnd(ended));
  });
});

describe("status's line of a rollback since the last run", () => {
  const line = (counts: StatusRollback['counts']) =>
    renderRollback(printable({ backfillId: 'st-1', rollback: { state: 'completed', endedAt: null, by: 'alice', counts } })).map(plain);

  it('says the data is back when the rollback restored or removed partitions (or an earlier one had)', () => {
    expect(line({ restored: 22, removed: 4, alreadyRestored: 0, leftAlone: 0 })).toEqual([
      "  ⟲ rolled back by alice: 22 restored, 4 removed, 0 already restored, 0 left alone — the data is back at its versions before this backfill; 'backfill audit st-1' shows what it did",
    ]);
    expect(line({ restored: 0, removed: 0, alreadyRestored: 3, leftAlone: 0 })[0]).toContain('the data is back');
  });

  it('does not say so of a rollback that moved nothing: it found nothing, or left every partition alone', () => {
    expect(line({ restored: 0, removed: 0, alreadyRestored: 0, leftAlone: 0 })).toEqual([
      "  ⟲ a rollback by alice found nothing to roll back: st-1 published nothing; 'backfill audit st-1' shows what it did",
    ]);
    expect(line({ restored: 0, removed: 0, alreadyRestored: 0, leftAlone: 128 })).toEqual([
      "  ⟲ a rollback by alice left every partition alone (128, changed since by a later backfill), so the data is not rolled back: 'backfill rollback st-1 --force' restores them; 'backfill audit st-1' shows what it did",
    ]);
  });
});

describe('renderStatus', () => {
  const text = plain(renderStatus(progress()));
  const lines = text.split('\n');

  it('starts with the headline and ends with the failure lines', () => {
    expect(lines[0]).toBe(plain(headline(printable(progress()))));
    expect(lines.slice(-2)).toEqual(renderFailures(printable(progress())).map(plain));
  });

  it('has a row per node with its counts, rate, concurrency, throughput and ETA', () => {
    const raw = lines.find((l) => l.includes('orders_raw') && !l.includes('✗'))!;
    expect(raw).toBeDefined();
    const cells = raw.split(/[│|]/).map((c) => c.trim()).filter(Boolean);
    expect(cells).toEqual(['orders_raw', '1,100/1,200', '4', '6', '0', '90', '2.5/s (3 throttled)', '4', '12.3/s', '7.5s']);
    const daily = lines.find((l) => l.includes('daily_revenue'))!;
    const dailyCells = daily.split(/[│|]/).map((c) => c.trim()).filter(Boolean);
    expect(dailyCells).toEqual(['daily_revenue', '900/1,200', '0', '0', '6', '294', 'unlimited', '8', '–', '–']);
  });

  it("says an ETA of 0 with partitions left is under a second, not done, and gives no node an ETA once the backfill stopped short", () => {
    const soon = progress({ etaSeconds: 0 });
    soon.nodes[0]!.etaSeconds = 0;
    const shown = plain(renderStatus(soon));
    expect(shown.split('\n')[0]).toContain('ETA <1s');
    expect(shown.split('\n').find((l) => l.includes('orders_raw') && !l.includes('✗'))).toMatch(/<1s\s*[│|]?\s*$/);
    const finished = progress({ etaSeconds: 0, nodes: progress().nodes.map((n) => ({ ...n, running: 0, pending: 0, etaSeconds: 0 })) });
    expect(plain(headline(printable(finished)))).toContain('ETA done');
    const cancelled = plain(renderStatus(progress({ state: 'cancelled' })));
    const row = cancelled.split('\n').find((l) => l.includes('orders_raw') && !l.includes('✗'))!;
    expect(row.split(/[│|]/).map((c) => c.trim()).filter(Boolean).at(-1)).toBe('–');
  });

  it('has the column headings', () => {
    for (const heading of ['node', 'done', 'running', 'failed', 'blocked', 'pending', 'rate', 'concurrency', 'throughput', 'ETA']) {
      expect(text).toContain(heading);
    }
  });
  it('a staged backfill says how to compare, publish or discard it; a running one does not', () => {
    const staged = plain(renderStatus(progress({ state: 'staged' })));
    expect(staged.split('\n')[0]).toMatch(/ staged · /);
    expect(staged).toContain(`staged: nothing is published yet. Compare with 'backfill diff ${progress().backfillId}', then 'backfill publish ${progress().backfillId}' or 'backfill discard ${progress().backfillId}'`);
    expect(text).not.toContain('nothing is published yet');
  });

  it('progress a worker answered while the workflow task keeps failing: the warning under the headline', () => {
    const workflowTaskFailing = { attempt: 3, since: null, message: "backfill 'b1' is running but its workflow task has failed 2 times in a row: ... it no longer moves." };
    expect(plain(renderStatus({ ...progress(), waiting: [], workflowTaskFailing })).split('\n')[1]).toBe(`  ⚠ ${workflowTaskFailing.message}`);
    expect(lines[1]).not.toContain('⚠');
  });

  it('a run the policy refused at admission: under the headline, that nothing of it ran, each rule it broke (made printable), and what to do', () => {
    const refused = 'reasons.required[0]: start needs a reason: add --reason\ncaps.backfill.rate: 500/s is above the cap \u001b[2Jof 100/s';
    const shown = plain(renderStatus({ ...progress({ state: 'failed' }), waiting: [], refused })).split('\n');
    expect(shown.slice(1, 5)).toEqual([
      '  ✗ refused by the policy at its start, so nothing of it ran:',
      '      reasons.required[0]: start needs a reason: add --reason',
      '      caps.backfill.rate: 500/s is above the cap  [2Jof 100/s',
      '  next: meet these rules, then run the same command again',
    ]);
    expect(text).not.toContain('refused by the policy');
  });

  it('a later run the policy refused (a refused resume, or a copy of an ended backfill\'s start): the run shown stands, and only its sender would run it again', () => {
    const refused = 'approval.signedStart: the start signature was used already (already_used)';
    const shown = plain(renderStatus({ ...progress({ state: 'completed' }), waiting: [], refused, refusedLater: '2024-05-01T12:00:00.000Z' })).split('\n');
    expect(shown.slice(1, 4)).toEqual([
      '  ✗ a later run of this id, started 2024-05-01 12:00:00 UTC, was refused by the policy at its start, so nothing of it ran (the run above stands):',
      '      approval.signedStart: the start signature was used already (already_used)',
      '  next: if that run was yours, meet these rules, then run the same command again',
    ]);
  });

  it('a staged backfill whose publish is under way says so (it said "nothing is published yet: publish"), and who asked', () => {
    const staged = (phase: 'awaiting' | 'publishing' | 'discarding') => plain(renderStatus({ ...progress({ state: 'staged' }), waiting: [], staged: { phase, by: 'ops@vm', at: 0 } }));
    expect(staged('awaiting')).toContain("staged: nothing is published yet. Compare with 'backfill diff");
    expect(staged('publishing')).toContain('staged: being published (by ops@vm at 1970-01-01 00:00:00 UTC), all at once: nothing is published until it is done. A publish whose worker was lost runs again');
    expect(staged('publishing')).not.toContain('backfill publish');
    expect(staged('discarding')).toContain('staged: being discarded (by ops@vm at 1970-01-01 00:00:00 UTC): nothing is published');
  });

  it('wait and start --watch of a run that failed say why too, with or without its progress', () => {
    const failure = 'cannot connect to the PostgreSQL warehouse: database "nosuchdb" does not exist';
    expect(plain(renderEnd({ ...progress({ state: 'failed' }), failure })).split('\n')[1]).toBe(`  ✗ it failed: ${failure}`);
    expect(plain(renderWaited({ backfillId: 'b1', state: 'failed', progress: progress({ state: 'failed' }), failure })).split('\n')[1]).toBe(`  ✗ it failed: ${failure}`);
    expect(plain(renderWaited({ backfillId: 'b1', state: 'failed', progress: null, failure })).split('\n')).toEqual(['b1 failed', `  ✗ it failed: ${failure}`]);
    expect(plain(renderWaited({ backfillId: 'b1', state: 'cancelled', progress: null }))).toBe('b1 cancelled');
  });

  it('a run that failed: why, under the headline (it said only that it ended failed)', () => {
    const failure = "dataset pages is written by backfill 'b0' (it ended terminated): one writer per dataset";
    const shown = plain(renderStatus({ ...progress({ state: 'failed' }), waiting: [], failure })).split('\n');
    expect(shown[1]).toBe(`  ✗ it failed: ${failure}`);
  });
});

describe('renderGovernance (status under a policy)', () => {
  const governance = (fields: Partial<GovernanceView> = {}): GovernanceView => ({
    policy: { hash: 'sha256:abc', path: '/etc/backfill.policy.yaml' },
    planHash: 'sha256:0123456789abcdef0123',
    starter: { identity: 'alice@example.com', verified: true },
    approval: { needed: true, reasons: ['it writes finance_orders, which always needs approval (approval.datasets)'], approvedBy: null, approvedAt: null },
    holds: [],
    window: null,
    budgets: { retries: null, cost: null },
    priority: { key: null, fairnessWeight: null },
    estimate: null,
    lastAction: null,
    recentActions: [],
    actions: 0,
    ...fields,
  });

  it("puts the backfill's id in the commands a hold's reason names, quoted for the shell when it must be", () => {
    const reason = 'the cost budget is spent: 10 of 10 rows; raise it with backfill set-budget <id> --cost <more> to go on';
    expect(withBackfillId(reason, 'q1-2025')).toBe('the cost budget is spent: 10 of 10 rows; raise it with backfill set-budget q1-2025 --cost <more> to go on');
    expect(withBackfillId(reason, "it's")).toContain("backfill set-budget it\\'s --cost");
    expect(withBackfillId('backfill start <spec> --id <id> --rerun', 'b1')).toBe('backfill start <spec> --id <id> --rerun');
  });

  it('says nothing for a backfill without a policy', () => {
    expect(renderGovernance(printable(progress()))).toEqual([]);
  });

  it('names each hold, the budgets and the last action with who and why (colour or not)', () => {
    const view = governance({
      holds: [
        { kind: 'approval', reason: 'waits for an approval: it writes finance_orders (backfill approve <id> --reason ... --sign-key <key>)' },
        { kind: 'budget', reason: 'the retries budget is spent: 2 of 2 failed attempts; raise it with backfill set-budget <id> --retries <n> to go on' },
      ],
      budgets: { retries: { budget: 'retries', limit: 2, used: 2, remaining: 0, reached: true, over: 0, unit: 'failed attempts' }, cost: null },
      lastAction: { seq: 3, at: Date.parse('2024-05-01T12:00:00.500Z'), action: 'set-rate', identity: 'bob@example.com', verified: false, reason: 'source is slow', outcome: 'applied', details: { rate: 5, previous: 20 } },
    });
    const lines = renderGovernance(printable(progress({ governance: view }))).map((l) => stripVTControlCharacters(l));
    expect(lines).toEqual([
      '  ⏸ waits for an approval: it writes finance_orders (backfill approve shop-1 --reason ... --sign-key <key>)',
      '  ⏸ the retries budget is spent: 2 of 2 failed attempts; raise it with backfill set-budget shop-1 --retries <n> to go on',
      '  budgets: retries 2 of 2 failed attempts (spent)',
      '  last action: set-rate by bob@example.com (declared) at 2024-05-01 12:00:00 UTC: "source is slow" · rate 20/s → 5/s',
    ]);
    // In the status, right under the headline.
    const status = plain(renderStatus(progress({ governance: view }))).split('\n');
    expect(status.slice(1, 5)).toEqual(lines);
  });

  it('shows the run window while it is open, and a verified approver as such', () => {
    const view = governance({
      window: { open: true, description: 'inside a run window until 06:00 Europe/Berlin', opensAt: null, closesAt: 0 },
      lastAction: { seq: 2, at: 0, action: 'approve', identity: 'bob@example.com', verified: true, reason: 'reviewed', outcome: 'applied', details: { planHash: 'sha256:0123456789abcdef0123' } },
    });
    expect(renderGovernance(printable(progress({ governance: view }))).map((l) => stripVTControlCharacters(l))).toEqual([
      '  run window: inside a run window until 06:00 Europe/Berlin',
      '  last action: approve by bob@example.com (verified signature) at 1970-01-01 00:00:00 UTC: "reviewed" · approved plan sha256:0123456789ab…',
    ]);
  });

  it('says what a publish did, and ends the line after who and why when an entry tells nothing more (no dangling separator)', () => {
    const last = (action: AuditEntry['action'], details: AuditEntry['details']) =>
      renderGovernance(printable(progress({ governance: governance({ lastAction: { seq: 4, at: 0, action, identity: 'root@vm', verified: false, reason: null, outcome: 'applied', details } }) }))).map((l) =>
        stripVTControlCharacters(l),
      );
    expect(last('publish', {})).toEqual(['  last action: publish by root@vm (declared) at 1970-01-01 00:00:00 UTC · publish asked: every staged version, at once']);
    // A pause from before pauses recorded what they found.
    expect(last('pause', {})).toEqual(['  last action: pause by root@vm (declared) at 1970-01-01 00:00:00 UTC']);
  });

  // Before, a refused hand-made signal with a reason of 5,000 characters took the line over.
  it('shows the last action applied, counts the refusals after it, and cuts a long reason', () => {
    const entry = (seq: number, outcome: AuditEntry['outcome'], reason: string): AuditEntry => ({ seq, at: 0, action: 'pause', identity: 'ops@vm', verified: false, reason, outcome, details: {} });
    const applied = entry(1, 'applied', `night ${'x'.repeat(300)}`);
    const junk = entry(2, 'refused', 'y'.repeat(5000));
    const lines = renderGovernance(printable(progress({ governance: governance({ lastAction: junk, recentActions: [applied, junk, junk] }) }))).map((l) => stripVTControlCharacters(l));
    expect(lines).toEqual([`  last action: pause by ops@vm (declared) at 1970-01-01 00:00:00 UTC: "night ${'x'.repeat(114)}…" (2 refused since: backfill audit shop-1)`]);
    // Only refusals kept: the last of them, as it is.
    expect(renderGovernance(printable(progress({ governance: governance({ lastAction: entry(3, 'refused', 'no'), recentActions: [entry(3, 'refused', 'no')] }) })))[0]).toContain('last action: pause (refused) by');
  });
});

describe('status of a node whose batches hold more partitions than its concurrency', () => {
  const daily = (running: number) => progress({ nodes: [nodeProgress({ id: 'daily', total: 100, done: 10, running, pending: 90 - running, concurrency: 4 })] });

  it('says under the table that running counts the partitions of batches in flight, and concurrency caps activities', () => {
    const lines = plain(renderStatus(daily(5))).split('\n');
    const note = lines.findIndex((l) => l.includes('batches in flight'));
    const row = lines.findIndex((l) => l.includes('10/100'));
    expect(row).toBeGreaterThan(0);
    expect(note).toBeGreaterThan(row);
    expect(lines[note]).toBe('  running counts the partitions of batches in flight (daily): concurrency caps activities, and a batch runs its partitions one after another');
  });

  it('says nothing while running is within concurrency', () => {
    expect(plain(renderStatus(daily(4)))).not.toContain('batches in flight');
  });
});

/** The governance of a backfill without a policy, as a run that ended reports it (its last action a pause unless told). */
const endedView = (fields: Partial<GovernanceView>): GovernanceView => ({
  policy: { hash: null, path: null },
  planHash: 'sha256:0123456789abcdef0123',
  starter: { identity: 'alice@example.com', verified: false },
  approval: { needed: false, reasons: [], approvedBy: null, approvedAt: null },
  holds: [],
  window: null,
  budgets: { retries: null, cost: null },
  priority: { key: null, fairnessWeight: null },
  estimate: null,
  lastAction: { seq: 2, at: 0, action: 'pause', identity: 'root@vm', verified: false, reason: null, outcome: 'applied', details: {} },
  recentActions: [],
  actions: 2,
  ...fields,
});

describe('status of a backfill that ended (withoutLiveHolds)', () => {
  const view = endedView;
  const held = view({
    holds: [
      { kind: 'operator', reason: 'paused by an operator (backfill resume goes on)' },
      { kind: 'budget', reason: 'the retries budget is spent: 3 of 3 failed attempts' },
    ],
    window: { open: true, description: 'inside the run window until Sun 23:46 UTC', opensAt: null, closesAt: 0 },
  });

  it('a completed one paused while staged: no pause, no hold, no run window, in the text or the JSON; the last action still tells the pause', () => {
    const shown = withoutLiveHolds(progress({ state: 'completed', paused: true, governance: held }));
    expect(shown).toMatchObject({ paused: false, governance: { holds: [], window: null } });
    const text = plain(renderStatus(shown));
    expect(text).not.toMatch(/⏸|resume goes on|run window|budget is spent/);
    expect(text).toContain('last action: pause by root@vm');
  });

  it('every ended state drops them; a running, staged or held one keeps them', () => {
    for (const state of ['completed', 'completed_with_failures', 'failed', 'cancelled', 'discarded', 'canary_failed', 'terminated', 'timed_out'] as const) {
      expect(withoutLiveHolds(progress({ state, paused: true, governance: held })).governance?.holds).toEqual([]);
    }
    for (const state of ['running', 'staged', 'awaiting_approval', 'waiting_for_window', 'awaiting_canary'] as const) {
      const live = progress({ state, paused: true, governance: held });
      expect(withoutLiveHolds(live)).toBe(live);
    }
  });
});

describe('status of a staged backfill discarded after it ended (withDiscardAfterEnd)', () => {
  const cancel: AuditEntry = { seq: 2, at: 1000, action: 'cancel', identity: 'root@vm', verified: false, reason: null, outcome: 'applied', details: {} };
  const discard = (outcome: AuditEntry['outcome'], at: number): AuditEntry => ({ seq: 1, at, action: 'discard', identity: 'ops@vm', verified: false, reason: 'left by a cancel', outcome, details: {} });
  const governance = endedView({ lastAction: cancel, recentActions: [cancel] });
  const cancelled = progress({ state: 'cancelled', governance, staged: { phase: 'awaiting' } });

  it('before a discard: the cancel is its last action, and the text says what it staged stays and how to drop it', () => {
    expect(withDiscardAfterEnd(cancelled, [], false)).toBe(cancelled);
    const text = plain(renderStatus(cancelled));
    expect(text).toContain('last action: cancel by root@vm');
    expect(text).toContain("staged: it ended before its decision, so nothing of it is published; what it staged stays until 'backfill discard shop-1' drops it");
  });

  it('a completed discard is the last action, numbered on, and leaves what it staged discarded', () => {
    const shown = withDiscardAfterEnd(cancelled, [discard('applied', 5000)], true);
    expect(shown.staged).toEqual({ phase: 'discarded', by: 'ops@vm', at: 5000 });
    expect(shown.governance).toMatchObject({ lastAction: { seq: 3, action: 'discard', at: 5000 }, actions: 3 });
    expect(shown.governance!.recentActions.map((e) => e.action)).toEqual(['cancel', 'discard']);
    const text = plain(renderStatus(shown));
    expect(text).toContain('last action: discard by ops@vm (declared) at 1970-01-01 00:00:05 UTC: "left by a cancel"');
    expect(text).toContain('staged: discarded after it ended (by ops@vm at 1970-01-01 00:00:05 UTC): nothing of it was published');
    expect(text).not.toContain('ended before its decision');
  });

  it('a discard the policy refused is told as refused, and what it staged still waits for one', () => {
    const shown = withDiscardAfterEnd(cancelled, [discard('refused', 5000)], false);
    expect(shown.staged).toEqual({ phase: 'awaiting' });
    expect(plain(renderStatus(shown))).toContain('(1 refused since: backfill audit shop-1)');
  });

  it("a canary's slice discarded after it ended: the canary says discarded, by whom", () => {
    const canary: CanaryView = { phase: 'awaiting', pick: 'newest', perNode: 1, partitions: 2, auto: null, diff: null, decision: null, note: null };
    const ended = progress({ state: 'cancelled', governance, canary });
    // Before it: it waits for no approval (it ended), and the way out is a discard.
    const before = plain(renderStatus(ended));
    expect(before).toContain("canary: it ended before its decision, so nothing of it is published; its slice stays staged until 'backfill discard shop-1' drops it");
    expect(before).not.toContain('canary: waits');
    const shown = withDiscardAfterEnd(ended, [discard('applied', 5000)], true);
    expect(shown.canary).toMatchObject({ phase: 'discarded', decision: { action: 'discard', by: 'ops@vm', reason: 'left by a cancel', at: 5000, auto: false } });
    expect(plain(renderStatus(shown))).toContain('canary: discarded by ops@vm');
  });
});

describe('BackfillClient.start refuses a bad --priority or --canary before it asks the server anything', () => {
  /** A client whose connection fails the test when used: start must refuse before it connects, lists or waits. */
  async function offlineClient(): Promise<{ client: BackfillClient; calls: string[] }> {
    const { fakeBackfillClient } = await import('./fake-backfill-client.ts');
    const calls: string[] = [];
    const service = new Proxy({}, { get: (_, name) => () => Promise.reject(new Error(`the server was asked: ${calls[calls.push(String(name)) - 1]}`)) });
    const client = fakeBackfillClient({ operatorService: service, workflowService: service, defaults: {}, identity: 'test' });
    return { client, calls };
  }
  const spec = resolveSpec({ name: 'shop', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-03' }, nodes: [{ id: 'a', transform: 'noop' }] });

  it('a priority outside 1-5', async () => {
    const { client, calls } = await offlineClient();
    await expect(client.start(spec, { id: 'x', priority: 7, waitForDatasets: {} })).rejects.toMatchObject({ code: 'invalid_argument', path: 'priority' });
    expect(calls).toEqual([]);
  });

  it('a canary with --stage, and a canary of no partitions', async () => {
    const { client, calls } = await offlineClient();
    await expect(client.start(spec, { id: 'x', canary: 2, stage: true, waitForDatasets: {} })).rejects.toMatchObject({ code: 'invalid_argument', path: 'canary' });
    await expect(client.start(spec, { id: 'x', canary: 0, waitForDatasets: {} })).rejects.toMatchObject({ code: 'invalid_spec' });
    expect(calls).toEqual([]);
  });
});

describe('resume of a backfill no operator paused', () => {
  const unchanged = { since: Date.parse('2024-05-01T12:00:00Z'), by: 'bob (declared)', reason: null };
  it('says nothing changed, since when and by whom', () => {
    expect(notPausedText('b', unchanged, {})).toBe('b was not paused (since 2024-05-01T12:00:00.000Z, by bob (declared)): nothing changed');
  });
  it('says not paused by an operator when something else holds it (status shows it paused)', () => {
    const text = notPausedText('b', { since: null, by: null, reason: null }, { holds: [{ reason: 'the retries budget is spent' }] });
    expect(text).toBe('b was not paused by an operator: nothing changed\n  still held: the retries budget is spent');
    // The hold's command names this backfill, not <id>.
    const spent = notPausedText('shop 1', { since: null, by: null, reason: null }, { holds: [{ reason: 'the retries budget is spent: 4 of 3; raise it with backfill set-budget <id> --retries <more> to go on' }] });
    expect(spent).toContain("still held: the retries budget is spent: 4 of 3; raise it with backfill set-budget shop\\ 1 --retries <more> to go on");
  });
});
