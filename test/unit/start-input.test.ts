import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpecFile } from '../../client/spec-file.ts';
import { resolveSpec } from '../../core/spec.ts';
import { startInputProblem, startSpecProblem } from '../../core/start-input.ts';

const ROOT = join(import.meta.dirname, '../..');

const spec = resolveSpec({
  name: 'rich',
  description: 'every kind of node',
  partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-10' },
  defaults: { concurrency: 4, rate: 2, retry: { maxAttempts: 3 } },
  canary: { partitions: 2, auto: { maxRowChange: '5%' } },
  nodes: [
    { id: 'a', sql: 'SELECT :partition AS day', key: ['day'], checks: [{ type: 'row_count', min: 1 }] },
    { id: 'b', transform: 'noop', dependsOn: ['a'], params: { k: 1 }, batchSize: 'auto', adopt: true },
    { id: 'w', transform: 'noop', partitions: { grain: 'week' }, dependsOn: ['b'] },
  ],
});

describe('startSpecProblem, startInputProblem', () => {
  it('take what the client makes: its specs, ranges, limits and skips', async () => {
    expect(startSpecProblem(spec)).toBeNull();
    for (const example of ['examples/shop/backfill.yaml', 'examples/speeds/backfill.yaml']) {
      expect(startSpecProblem((await loadSpecFile(`${ROOT}/${example}`)).spec), example).toBeNull();
    }
    expect(startInputProblem({})).toBeNull();
    expect(startInputProblem({ range: {} })).toBeNull();
    expect(startInputProblem({ range: { from: Date.UTC(2024, 0, 2), to: Date.UTC(2024, 0, 5) } })).toBeNull();
    expect(startInputProblem({ limits: { rate: 2.5, concurrency: null }, skip: { a: '', b: 'r0,3' } })).toBeNull();
    expect(startInputProblem({ limits: { rate: null } })).toBeNull();
  });

  it('name what is not a resolved spec, a range of instants, limits or range sets', () => {
    expect(startSpecProblem(undefined)).toBe('spec is required');
    expect(startSpecProblem({ ...spec, nodes: 'all' })).toMatch(/^spec\.nodes must be array/);
    expect(startSpecProblem({ ...spec, nodes: [{ id: 'x' }] })).toMatch(/^spec\.nodes\[0\]/);
    expect(startInputProblem({ range: 'all' })).toMatch(/^range must be object/);
    expect(startInputProblem({ range: { from: 'yesterday' } })).toMatch(/^range\.from must be number/);
    expect(startInputProblem({ range: { from: Number.NaN } })).toMatch(/^range\.from/);
    expect(startInputProblem({ range: { since: 1 } })).toMatch(/^range has unknown field/);
    expect(startInputProblem({ limits: { rate: 'fast' } })).toMatch(/^limits\.rate/);
    expect(startInputProblem({ limits: { concurrency: -3 } })).toMatch(/^limits\.concurrency must be a whole number from 1/);
    expect(startInputProblem({ limits: 'x' })).toMatch(/^limits must be object/);
    expect(startInputProblem({ skip: { a: 'garbage' } })).toBe('skip.a is not a range set');
    expect(startInputProblem({ skip: 'x' })).toMatch(/^skip must be record/);
  });
});
