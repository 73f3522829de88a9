import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { loadSpecFile, projectSpec, specTransformModules } from '../../client/spec-file.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/shop/backfill.yaml', import.meta.url));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-spec-file-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The BackfillError `promise` rejects with (fails the test when it resolves or throws something else). */
async function rejection(promise: Promise<unknown>): Promise<BackfillError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackfillError);
  return error as BackfillError;
}

const SIMPLE_YAML = `
name: simple
partitions: { grain: day, start: 2024-01-01, end: 2024-01-04 }
nodes:
  - id: a
    transform: noop
  - id: b
    transform: sleep
    dependsOn: [a]
`;

describe('loadSpecFile on the shop example', () => {
  it('loads its 6 nodes with defaults filled in', async () => {
    const { spec, path } = await loadSpecFile(EXAMPLE);
    expect(path).toBe(EXAMPLE);
    expect(spec.name).toBe('shop');
    expect(spec.nodes.map((n) => n.id)).toEqual([
      'orders_raw',
      'orders_clean',
      'daily_revenue',
      'revenue_7d',
      'weekly_revenue',
      'monthly_active_customers',
    ]);
    const byId = new Map(spec.nodes.map((n) => [n.id, n]));
    expect(byId.get('orders_raw')!.transform).toBe('generate_orders');
    expect(byId.get('orders_clean')!.transform).toBe('sql');
    expect(byId.get('orders_clean')!.concurrency).toBe(8);
    expect(byId.get('orders_clean')!.retry.maxAttempts).toBe(3);
    expect(byId.get('revenue_7d')!.dependsOn).toEqual([{ node: 'daily_revenue', mapping: { lag: { from: -6, to: 0 } } }]);
    expect(byId.get('weekly_revenue')!.dependsOn).toEqual([{ node: 'daily_revenue', mapping: 'window' }]);
  });

  it('resolves the transforms module relative to the spec, not the working directory', async () => {
    const { transformModules } = await loadSpecFile(EXAMPLE);
    expect(transformModules).toEqual([fileURLToPath(new URL('../../examples/shop/transforms.ts', import.meta.url))]);
  });
});

describe('loadSpecFile on files of its own', () => {
  it('loads a YAML file', async () => {
    const path = write('simple.yaml', SIMPLE_YAML);
    const { spec, transformModules } = await loadSpecFile(path);
    expect(spec.nodes.map((n) => [n.id, n.transform])).toEqual([
      ['a', 'noop'],
      ['b', 'sleep'],
    ]);
    expect(spec.nodes[0]!.partitions).toEqual({ kind: 'time', grain: 'day', start: Date.UTC(2024, 0, 1), end: Date.UTC(2024, 0, 4) });
    expect(transformModules).toEqual([]);
  });

  it('loads a JSON file', async () => {
    const path = write(
      'simple.json',
      JSON.stringify({ name: 'json-spec', partitions: { keys: ['eu', 'us'] }, nodes: [{ id: 'regions', transform: 'noop' }] }),
    );
    const { spec } = await loadSpecFile(path);
    expect(spec.name).toBe('json-spec');
    expect(spec.nodes[0]!.partitions).toEqual({ kind: 'static', keys: ['eu', 'us'] });
  });

  it('takes a relative path from the working directory', async () => {
    const { path } = await loadSpecFile('examples/shop/backfill.yaml');
    expect(path).toBe(resolve('examples/shop/backfill.yaml'));
  });

  it('resolves a listed transforms module next to the spec and knows its transforms', async () => {
    const sub = join(dir, 'with-module');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'my-transforms.mjs'), 'export default { custom_rows: () => [{ x: 1 }] };\n');
    const path = join(sub, 'spec.yaml');
    writeFileSync(path, 'name: custom\ntransforms: [./my-transforms.mjs]\npartitions: { keys: [k1] }\nnodes:\n  - { id: a, transform: custom_rows }\n');
    const loaded = await loadSpecFile(path);
    expect(loaded.transformModules).toEqual([join(sub, 'my-transforms.mjs')]);
    expect(loaded.spec.nodes[0]!.transform).toBe('custom_rows');
  });

  it('refuses invalid YAML with invalid_spec, naming the file', async () => {
    const path = write('broken.yaml', 'name: broken\nnodes: [ { id: a, transform: noop }\n  - oops: [\n');
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('invalid_spec');
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/is not valid YAML/);
  });

  it('refuses invalid JSON with invalid_spec, naming the file', async () => {
    const path = write('broken.json', '{ "name": "broken", "nodes": [ }');
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('invalid_spec');
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/is not valid JSON/);
  });

  it('refuses a missing file with invalid_argument, naming the file and the reason', async () => {
    const path = join(dir, 'does-not-exist.yaml');
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toContain(path);
    expect(error.message).toContain('does not exist');
  });

  it('refuses a directory, saying it is one and naming the spec file to give', async () => {
    const path = join(dir, 'xdir.yaml');
    mkdirSync(path);
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toBe(`cannot read the spec file ${path}: it is a directory: name a spec file (.yaml, .json or .ts), e.g. ${join(path, 'backfill.yaml')}`);
    // A project's directory: its backfill.yaml.
    writeFileSync(join(path, 'backfill.yaml'), SIMPLE_YAML);
    expect((await rejection(loadSpecFile(path))).message).toBe(`cannot read the spec file ${path}: it is a directory: name its spec file, ${join(path, 'backfill.yaml')}`);
  });

  it('refuses an empty spec file, saying what to write', async () => {
    const error = await rejection(loadSpecFile(write('empty.yaml', '# nothing yet\n')));
    expect(error.code).toBe('invalid_spec');
    expect(error.message).toMatch(/^spec: is empty: write the backfill's name, partitions and nodes, e\.g\. \{ name: daily-revenue, /);
  });

  it('refuses a node whose transform is not registered, with unknown_transform and its path', async () => {
    const path = write('unknown.yaml', 'name: unknown\npartitions: { keys: [k] }\nnodes:\n  - { id: a, transform: noop }\n  - { id: b, transform: no_such_thing }\n');
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('unknown_transform');
    expect(error.path).toBe('nodes[1].transform');
    expect(error.message).toContain("'no_such_thing' is not a registered transform");
    // it lists the known ones
    expect(error.message).toMatch(/known: noop, sleep, sql/);
  });

  it('refuses a transforms module that does not exist, naming it', async () => {
    const path = write('missing-module.yaml', 'name: m\ntransforms: [./nowhere/transforms.mjs]\npartitions: { keys: [k] }\nnodes:\n  - { id: a, transform: noop }\n');
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('invalid_spec');
    expect(error.path).toBe('transforms');
    expect(error.message).toContain('could not load transforms from');
    expect(error.message).toContain(join(dir, 'nowhere', 'transforms.mjs'));
    // Where its paths count from, rather than Node's 'imported from' a file inside this package.
    expect(error.message).toContain(`there is no such file; the paths under 'transforms' count from the spec's directory (${dir}): correct the path`);
    expect(error.message).not.toContain('imported from');
  });

  it('refuses a schema error with the field that is wrong', async () => {
    const path = write('bad-field.yaml', 'name: bad\npartitions: { grain: day, start: 2024-01-01, end: 2024-01-04 }\nnodes:\n  - { id: a, transform: noop, concurrency: 0 }\n');
    const error = await rejection(loadSpecFile(path));
    expect(error.code).toBe('invalid_spec');
    expect(error.path).toBe('nodes[0].concurrency');
  });
});

describe("a project's spec (what dev and demo run when not told otherwise)", () => {
  it('is ./backfill.yaml when there is one', () => {
    const project = join(dir, 'project');
    mkdirSync(project, { recursive: true });
    expect(projectSpec(project)).toBeUndefined();
    writeFileSync(join(project, 'backfill.yaml'), 'name: p\n');
    expect(projectSpec(project)).toBe(join(project, 'backfill.yaml'));
  });

  it('lends dev its transform modules, resolved against the spec, without validating the rest', async () => {
    const path = write('half-written.yaml', 'name: p\ntransforms: [./transforms.ts, lib/more.mjs]\nnodes: []\n');
    expect(await specTransformModules(path)).toEqual([join(dir, 'transforms.ts'), join(dir, 'lib', 'more.mjs')]);
  });
});
