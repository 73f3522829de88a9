import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetryableError, ThrottledError } from '../../activities/errors.ts';
import {
  BUILTIN_TRANSFORMS,
  collectData,
  loadTransforms,
  partitionBindings,
  unitHash,
  withFaultInjection,
  type Transform,
  type TransformContext,
} from '../../activities/transforms.ts';

describe('partitionBindings', () => {
  it('binds the key, the window as ISO instants and its first and last days', () => {
    const b = partitionBindings('2024-03', { start: '2024-03-01T00:00:00Z', end: '2024-04-01T00:00:00Z' }, {});
    expect(b).toEqual({
      partition: '2024-03',
      start: '2024-03-01T00:00:00Z',
      end: '2024-04-01T00:00:00Z',
      start_date: '2024-03-01',
      end_date: '2024-03-31',
    });
  });

  it('end_date is the last day inside the window', () => {
    const day = partitionBindings('2024-02-28', { start: '2024-02-28T00:00:00Z', end: '2024-02-29T00:00:00Z' }, {});
    expect([day.start_date, day.end_date]).toEqual(['2024-02-28', '2024-02-28']);
    const leap = partitionBindings('2024-02', { start: '2024-02-01T00:00:00Z', end: '2024-03-01T00:00:00Z' }, {});
    expect(leap.end_date).toBe('2024-02-29');
    const week = partitionBindings('2024-W01', { start: '2024-01-01T00:00:00Z', end: '2024-01-08T00:00:00Z' }, {});
    expect([week.start_date, week.end_date]).toEqual(['2024-01-01', '2024-01-07']);
    const hour = partitionBindings('2024-03-01T23', { start: '2024-03-01T23:00:00Z', end: '2024-03-02T00:00:00Z' }, {});
    expect([hour.start_date, hour.end_date]).toEqual(['2024-03-01', '2024-03-01']);
    const yearEnd = partitionBindings('2024-12', { start: '2024-12-01T00:00:00Z', end: '2025-01-01T00:00:00Z' }, {});
    expect(yearEnd.end_date).toBe('2024-12-31');
  });

  it('static keys have no window: the window bindings are null', () => {
    expect(partitionBindings('eu-west', null, {})).toEqual({ partition: 'eu-west', start: null, end: null, start_date: null, end_date: null });
  });

  it('binds scalar params, booleans as 1/0, and skips the rest', () => {
    const b = partitionBindings('k', null, {
      count: 5,
      ratio: 0.25,
      region: 'eu',
      big: 10n,
      on: true,
      off: false,
      nothing: null,
      list: [1, 2],
      nested: { a: 1 },
      missing: undefined,
      fn: () => 1,
    });
    expect(b).toMatchObject({ count: 5, ratio: 0.25, region: 'eu', big: 10n, on: 1, off: 0, nothing: null });
    for (const skipped of ['list', 'nested', 'missing', 'fn']) expect(b).not.toHaveProperty(skipped);
  });

  it('the partition bindings win over params of the same name', () => {
    const b = partitionBindings('2024-01-01', { start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' }, { partition: 'mine', start: 'x', limit: 3 });
    expect(b.partition).toBe('2024-01-01');
    expect(b.start).toBe('2024-01-01T00:00:00Z');
    expect(b.limit).toBe(3);
  });
});

describe('unitHash', () => {
  it('is the first 32 bits of the SHA-256 of the text, over 2^32', () => {
    const expected = createHash('sha256').update('orders/2024-01-01').digest().readUInt32BE(0) / 2 ** 32;
    expect(unitHash('orders/2024-01-01')).toBe(expected);
  });

  it('is stable and lies in [0, 1)', () => {
    const values = Array.from({ length: 2000 }, (_, i) => unitHash(`node/${i}`));
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
    expect(Array.from({ length: 2000 }, (_, i) => unitHash(`node/${i}`))).toEqual(values);
  });

  it('spreads different texts over the interval', () => {
    const values = Array.from({ length: 2000 }, (_, i) => unitHash(`node/${i}`));
    expect(new Set(values).size).toBeGreaterThan(1990);
    const low = values.filter((v) => v < 0.5).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1200);
  });
});

/** A context for calling a transform directly, as the activity would. */
function context(fields: Partial<TransformContext> = {}): TransformContext {
  const { session } = collectData();
  return {
    node: 'n',
    partition: '2024-01-01',
    window: { start: '2024-01-01T00:00:00Z', end: '2024-01-02T00:00:00Z' },
    params: {},
    sql: undefined,
    inputs: [],
    bindings: {},
    warehouse: { ...session, query: async () => [] },
    signal: new AbortController().signal,
    attempt: 1,
    throttled: 0,
    heartbeat: () => undefined,
    reportCost: () => undefined,
    reportLatency: () => undefined,
    ...fields,
  };
}

const sleep = BUILTIN_TRANSFORMS.get('sleep')!;

/** What calling `transform` does: 'ok', or the error it throws. */
async function outcome(transform: Transform, ctx: TransformContext): Promise<'ok' | Error> {
  try {
    await transform(ctx);
    return 'ok';
  } catch (error) {
    return error as Error;
  }
}

describe('the sleep transform', () => {
  it('with no params writes nothing and succeeds', async () => {
    const { data, session } = collectData();
    const ctx = context({ warehouse: { ...session, query: async () => [] } });
    expect(await sleep(ctx)).toBeUndefined();
    expect(data).toEqual({ rows: [], selects: [] });
  });

  it('failKeys fails exactly those partitions, with a retryable error naming node, key and attempt', async () => {
    const params = { failKeys: ['2024-01-02', '2024-01-05'] };
    const failing = await outcome(sleep, context({ params, partition: '2024-01-02', attempt: 3 }));
    expect(failing).toBeInstanceOf(Error);
    expect(failing).not.toBeInstanceOf(NonRetryableError);
    expect(failing).not.toBeInstanceOf(ThrottledError);
    expect((failing as Error).message).toBe('injected failure for n 2024-01-02 (attempt 3)');
    expect(await outcome(sleep, context({ params, partition: '2024-01-05' }))).toBeInstanceOf(Error);
    expect(await outcome(sleep, context({ params, partition: '2024-01-03' }))).toBe('ok');
  });

  it('failMessage replaces the message', async () => {
    const failing = await outcome(sleep, context({ params: { failKeys: ['2024-01-01'], failMessage: 'disk full' } }));
    expect((failing as Error).message).toBe('disk full (attempt 1)');
  });

  it('failAttempts fails the first N attempts, then succeeds', async () => {
    const params = { failKeys: ['2024-01-01'], failAttempts: 2 };
    expect(await outcome(sleep, context({ params, attempt: 1 }))).toBeInstanceOf(Error);
    expect(await outcome(sleep, context({ params, attempt: 2 }))).toBeInstanceOf(Error);
    expect(await outcome(sleep, context({ params, attempt: 3 }))).toBe('ok');
    expect(await outcome(sleep, context({ params, attempt: 10 }))).toBe('ok');
  });

  it('without failAttempts a failing key fails on every attempt', async () => {
    expect(await outcome(sleep, context({ params: { failKeys: ['2024-01-01'] }, attempt: 50 }))).toBeInstanceOf(Error);
  });

  it('permanent: true makes the failure non-retryable, with the plain message', async () => {
    const failing = await outcome(sleep, context({ params: { failKeys: ['2024-01-01'], permanent: true } }));
    expect(failing).toBeInstanceOf(NonRetryableError);
    expect((failing as Error).message).toBe('injected failure for n 2024-01-01');
  });

  it('failRate picks partitions by a hash of node and key: 0 fails none, 1 fails all, in between as the hash says', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    expect(new Set(keys.map((key) => unitHash(`n/${key}`) < 0.3)).size).toBe(2);
    for (const key of keys) {
      expect(await outcome(sleep, context({ partition: key, params: { failRate: 0 } })), key).toBe('ok');
      expect(await outcome(sleep, context({ partition: key, params: { failRate: 1 } })), key).toBeInstanceOf(Error);
      const expected = unitHash(`n/${key}`) < 0.3;
      const got = (await outcome(sleep, context({ partition: key, params: { failRate: 0.3 } }))) !== 'ok';
      expect(got, key).toBe(expected);
    }
  });

  it('throttleKeys throws ThrottledError the first time only, by default', async () => {
    const params = { throttleKeys: ['2024-01-01'] };
    const first = await outcome(sleep, context({ params, throttled: 0 }));
    expect(first).toBeInstanceOf(ThrottledError);
    expect((first as Error).message).toBe('downstream throttled n 2024-01-01');
    expect(await outcome(sleep, context({ params, throttled: 1 }))).toBe('ok');
    expect(await outcome(sleep, context({ params, partition: '2024-01-02', throttled: 0 }))).toBe('ok');
  });

  it('throttleTimes sets how many runs are throttled', async () => {
    const params = { throttleKeys: ['2024-01-01'], throttleTimes: 3 };
    for (const throttled of [0, 1, 2]) expect(await outcome(sleep, context({ params, throttled }))).toBeInstanceOf(ThrottledError);
    expect(await outcome(sleep, context({ params, throttled: 3 }))).toBe('ok');
  });

  it('throttling comes before injected failures', async () => {
    const params = { throttleKeys: ['2024-01-01'], failKeys: ['2024-01-01'], permanent: true };
    expect(await outcome(sleep, context({ params, throttled: 0 }))).toBeInstanceOf(ThrottledError);
    expect(await outcome(sleep, context({ params, throttled: 1 }))).toBeInstanceOf(NonRetryableError);
  });

  it('throttleRate throttles by the same hash as failRate', async () => {
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    // the sample has keys on both sides of the rate
    expect(new Set(keys.map((key) => unitHash(`n/${key}`) < 0.5)).size).toBe(2);
    for (const key of keys) {
      const expected = unitHash(`n/${key}`) < 0.5;
      const result = await outcome(sleep, context({ partition: key, params: { throttleRate: 0.5 } }));
      expect(result instanceof ThrottledError, key).toBe(expected);
    }
  });
});

describe('fault injection in the sleep transform', () => {
  const faulty = withFaultInjection(BUILTIN_TRANSFORMS, true).get('sleep')!;

  it('is off by default: crashKeys and hangKeys fail the partition for good, naming the flag, and nothing crashes or hangs', async () => {
    for (const params of [{ crashKeys: ['2024-01-01'] }, { hangKeys: ['2024-01-01'] }, { hangKeys: ['2024-01-01'], hang: 'busy' }]) {
      const failing = await outcome(sleep, context({ params }));
      expect(failing, JSON.stringify(params)).toBeInstanceOf(NonRetryableError);
      expect((failing as Error).message).toMatch(/^n 2024-01-01: the sleep transform's (crashKeys|hangKeys) would (kill|hang) this worker, and fault injection is off: start the worker with --allow-fault-injection/);
    }
  });

  it('when off, partitions that are not chosen, and later attempts, run as usual', async () => {
    expect(await outcome(sleep, context({ params: { crashKeys: ['2024-01-02'], hangKeys: ['2024-01-03'] } }))).toBe('ok');
    expect(await outcome(sleep, context({ params: { crashKeys: ['2024-01-01'] }, attempt: 2 }))).toBe('ok');
  });

  it('when on, hangKeys hang until the activity is cancelled', async () => {
    const controller = new AbortController();
    const hung = outcome(faulty, context({ params: { hangKeys: ['2024-01-01'] }, signal: controller.signal }));
    const first = await Promise.race([hung, new Promise((r) => setTimeout(() => r('still hanging'), 100))]);
    expect(first).toBe('still hanging');
    controller.abort(new Error('cancelled'));
    expect(((await hung) as Error).message).toBe('cancelled');
  });

  it('when on, crashKeys kill the process; when off, the process lives on', async () => {
    const transforms = fileURLToPath(new URL('../../activities/transforms.ts', import.meta.url));
    const script = `
      import { withFaultInjection, BUILTIN_TRANSFORMS } from ${JSON.stringify(transforms)};
      const sleep = withFaultInjection(BUILTIN_TRANSFORMS, process.argv[1] === 'on').get('sleep');
      await sleep({ node: 'n', partition: 'k', params: { crashKeys: ['k'] }, attempt: 1, throttled: 0, signal: new AbortController().signal }).catch((e) => console.log(e.name));
      console.log('alive');`;
    const run = (mode: string) =>
      promisify(execFile)('node', ['--import', 'tsx', '--input-type=module', '-e', script, mode], { cwd: join(import.meta.dirname, '../..') }).then(
        ({ stdout }) => ({ signal: null, stdout }),
        (error: { signal: string | null; stdout: string }) => ({ signal: error.signal, stdout: error.stdout }),
      );
    const [on, off] = await Promise.all([run('on'), run('off')]);
    expect(on).toEqual({ signal: 'SIGKILL', stdout: '' });
    expect(off).toEqual({ signal: null, stdout: 'NonRetryableError\nalive\n' });
  }, 30_000);

  it('withFaultInjection swaps only the built-in sleep, both ways, and leaves a sleep of your own alone', () => {
    expect(faulty).not.toBe(sleep);
    expect(withFaultInjection(withFaultInjection(BUILTIN_TRANSFORMS, true), false).get('sleep')).toBe(sleep);
    expect(withFaultInjection(BUILTIN_TRANSFORMS, false).get('noop')).toBe(BUILTIN_TRANSFORMS.get('noop'));
    expect(BUILTIN_TRANSFORMS.get('sleep')).toBe(sleep);
    const own: Transform = () => undefined;
    const registry = new Map(BUILTIN_TRANSFORMS).set('sleep', own);
    expect(withFaultInjection(registry, true).get('sleep')).toBe(own);
  });
});

describe('the other built-in transforms', () => {
  it('noop writes nothing', async () => {
    const { data, session } = collectData();
    await BUILTIN_TRANSFORMS.get('noop')!(context({ warehouse: { ...session, query: async () => [] } }));
    expect(data).toEqual({ rows: [], selects: [] });
  });

  it("sql adds the node's SQL with the partition's bindings", async () => {
    const { data, session } = collectData();
    const bindings = { partition: 'k', start: null };
    await BUILTIN_TRANSFORMS.get('sql')!(context({ sql: 'SELECT :partition AS p', bindings, warehouse: { ...session, query: async () => [] } }));
    expect(data).toEqual({ rows: [], selects: [{ sql: 'SELECT :partition AS p', bindings }] });
  });

  it('sql without SQL fails for good', async () => {
    const failing = await outcome(BUILTIN_TRANSFORMS.get('sql')!, context({ sql: undefined }));
    expect(failing).toBeInstanceOf(NonRetryableError);
    expect((failing as Error).message).toMatch(/has no sql/);
  });
});

describe('loadTransforms', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-transforms-'));
    writeFileSync(join(dir, 'default-export.mjs'), 'export default { double_it: () => [{ x: 2 }], other: () => undefined };\n');
    writeFileSync(join(dir, 'named-export.mjs'), 'export const transforms = { named_one: () => [{ y: 1 }] };\n');
    writeFileSync(join(dir, 'redefines.mjs'), 'export default { fine: () => undefined, sleep: () => undefined };\n');
    writeFileSync(join(dir, 'nothing.mjs'), 'export const answer = 42;\n');
    writeFileSync(join(dir, 'not-functions.mjs'), "export default { name: 'a spec', nodes: [] };\n");
    writeFileSync(join(dir, 'throws.mjs'), "throw new Error('module exploded');\n");
    writeFileSync(join(dir, 'clean-a.mjs'), "export default { clean: () => [{ from: 'a' }] };\n");
    writeFileSync(join(dir, 'clean-b.mjs'), "export default { clean: () => [{ from: 'b' }] };\n");
    writeFileSync(join(dir, 'with-version.mjs'), "export default { clean: () => [], version: '1.2' };\n");
    writeFileSync(join(dir, 'both.mjs'), 'export default { one: () => [] };\nexport const transforms = { two: () => [] };\n');
    writeFileSync(join(dir, 'both-same.mjs'), 'export const transforms = { one: () => [] };\nexport default transforms;\n');
    writeFileSync(join(dir, 'common.cjs'), 'exports.transforms = { from_cjs: () => [] };\n');
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('without modules returns the built-ins', async () => {
    const registry = await loadTransforms([]);
    expect([...registry.keys()].sort()).toEqual(['noop', 'sleep', 'sql']);
  });

  it("merges a module's default export with the built-ins", async () => {
    const registry = await loadTransforms([join(dir, 'default-export.mjs')]);
    expect([...registry.keys()].sort()).toEqual(['double_it', 'noop', 'other', 'sleep', 'sql']);
    expect(await registry.get('double_it')!(context())).toEqual([{ x: 2 }]);
    expect(registry.get('sleep')).toBe(BUILTIN_TRANSFORMS.get('sleep'));
  });

  it('accepts an export named transforms, and several modules', async () => {
    const registry = await loadTransforms([join(dir, 'default-export.mjs'), join(dir, 'named-export.mjs')]);
    expect(registry.has('named_one')).toBe(true);
    expect(registry.has('double_it')).toBe(true);
  });

  it('resolves relative paths from the base directory', async () => {
    const registry = await loadTransforms(['./named-export.mjs'], dir);
    expect(registry.has('named_one')).toBe(true);
  });

  it('does not change the built-in registry', async () => {
    await loadTransforms([join(dir, 'default-export.mjs')]);
    expect([...BUILTIN_TRANSFORMS.keys()].sort()).toEqual(['noop', 'sleep', 'sql']);
  });

  it('refuses a module that redefines a built-in', async () => {
    await expect(loadTransforms([join(dir, 'redefines.mjs')])).rejects.toThrow(/redefines the built-in transform 'sleep': rename it/);
  });

  it('refuses a module that exports no transforms', async () => {
    await expect(loadTransforms([join(dir, 'nothing.mjs')])).rejects.toThrow(/nothing\.mjs exports no transforms/);
    await expect(loadTransforms([join(dir, 'not-functions.mjs')])).rejects.toThrow(/exports no transforms/);
  });

  it('refuses a name that two modules define, naming both (which one ran depended on their order)', async () => {
    await expect(loadTransforms([join(dir, 'clean-a.mjs'), join(dir, 'clean-b.mjs')])).rejects.toThrow(
      `transform 'clean' is defined by both ${join(dir, 'clean-a.mjs')} and ${join(dir, 'clean-b.mjs')}: rename one of them`,
    );
    // The same module listed twice defines nothing twice.
    const registry = await loadTransforms(['./clean-a.mjs', join(dir, 'clean-a.mjs')], dir);
    expect(await registry.get('clean')!(context())).toEqual([{ from: 'a' }]);
  });

  it('refuses a record of transforms that holds something else, naming it', async () => {
    await expect(loadTransforms([join(dir, 'with-version.mjs')])).rejects.toThrow(
      `${join(dir, 'with-version.mjs')}: its transforms' 'version' is a string, not a function: the record holds only transforms (export other values under names of their own)`,
    );
  });

  it('refuses a module with both a default export and an export named transforms, unless they are one object', async () => {
    await expect(loadTransforms([join(dir, 'both.mjs')])).rejects.toThrow(/both\.mjs exports both a default export and an export named transforms: export the transforms once/);
    expect((await loadTransforms([join(dir, 'both-same.mjs')])).has('one')).toBe(true);
  });

  it('takes the transforms a CommonJS module exports as exports.transforms', async () => {
    expect((await loadTransforms([join(dir, 'common.cjs')])).has('from_cjs')).toBe(true);
  });

  it('names a module that cannot be loaded, and why', async () => {
    await expect(loadTransforms([join(dir, 'absent.mjs')])).rejects.toThrow(/could not load transforms from .*absent\.mjs: there is no such file: correct its path in --transforms/);
    await expect(loadTransforms([join(dir, 'throws.mjs')])).rejects.toThrow(/could not load transforms from .*throws\.mjs: importing it failed: module exploded: fix the module's top-level code/);
  });

  it('says that a module path names no file, and where a relative one counts from, not which file of this package imported it', async () => {
    const error = await loadTransforms(['./absent.ts'], dir).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toBe(`could not load transforms from ./absent.ts: there is no such file (${join(dir, 'absent.ts')}: a relative path counts from ${dir}): correct its path in --transforms ($BACKFILL_TRANSFORMS) or in the spec's transforms:`);
    expect(error?.message).not.toContain('imported from');
  });
});
