/** Loading a user's modules: TypeScript through tsx registered on first need, and a clear error without it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { esModuleOf, moduleImporter } from '../../activities/modules.ts';
import { isNonRetryable, isThrottled, NonRetryableError, ThrottledError } from '../../activities/errors.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-modules-'));
  writeFileSync(join(dir, 'plain.mjs'), 'export default { answer: 42 };\n');
  // Plain JavaScript under a .ts name: the TypeScript loader is already in place in vitest.
  writeFileSync(join(dir, 'typed.ts'), 'export default { answer: 43 };\n');
  writeFileSync(join(dir, 'other.mts'), 'export default { answer: 44 };\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const missingTsx = () => Promise.reject(Object.assign(new Error(`Cannot find package 'tsx' imported from ${dir}`), { code: 'ERR_MODULE_NOT_FOUND' }));

describe('moduleImporter', () => {
  it('imports JavaScript without asking for tsx', async () => {
    let asked = 0;
    const load = moduleImporter({ typescriptReady: false, loadTsx: () => (asked++, missingTsx()) });
    expect((await load(join(dir, 'plain.mjs'))).default).toEqual({ answer: 42 });
    expect(asked).toBe(0);
  });

  it('registers tsx once, on the first TypeScript module', async () => {
    let registered = 0;
    const load = moduleImporter({ typescriptReady: false, loadTsx: async () => ({ register: () => registered++ }) });
    expect((await load(join(dir, 'typed.ts'))).default).toEqual({ answer: 43 });
    expect((await load(join(dir, 'other.mts'))).default).toEqual({ answer: 44 });
    expect(registered).toBe(1);
  });

  it('without tsx, refuses a TypeScript module naming both fixes', async () => {
    const load = moduleImporter({ typescriptReady: false, loadTsx: missingTsx });
    const error = await load(join(dir, 'typed.ts')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackfillError);
    expect((error as BackfillError).message).toContain(join(dir, 'typed.ts'));
    expect((error as BackfillError).message).toMatch(/install tsx \(npm install tsx\), or write the module in JavaScript/);
    expect((await load(join(dir, 'plain.mjs'))).default).toEqual({ answer: 42 });
  });

  it('gives an ES module compiled to CommonJS as written: its exports, not the CommonJS exports object as its default', () => {
    const exportsObject = Object.defineProperty({ default: { answer: 45 }, named: 1 }, '__esModule', { value: true });
    expect(esModuleOf({ default: exportsObject })).toBe(exportsObject);
    // A plain CommonJS module (module.exports = …) and an ES module stay as Node gives them.
    const plain = { default: { transforms: {} } };
    expect(esModuleOf(plain)).toBe(plain);
    const esm = { default: { answer: 46 } };
    expect(esModuleOf(esm)).toBe(esm);
  });

  it('passes on other failures of loading tsx', async () => {
    const load = moduleImporter({ typescriptReady: false, loadTsx: () => Promise.reject(new Error('tsx is broken')) });
    await expect(load(join(dir, 'typed.ts'))).rejects.toThrow('tsx is broken');
  });
});

describe('transform errors from another copy of the package', () => {
  class OtherThrottled extends Error {
    override readonly name = 'ThrottledError';
  }
  class OtherNonRetryable extends Error {
    override readonly name = 'NonRetryableError';
  }

  it('are recognised by name as well as by class', () => {
    expect([isThrottled(new ThrottledError('x')), isThrottled(new OtherThrottled('x')), isThrottled(new Error('x'))]).toEqual([true, true, false]);
    expect([isNonRetryable(new NonRetryableError('x')), isNonRetryable(new OtherNonRetryable('x')), isNonRetryable(new OtherThrottled('x'))]).toEqual([true, true, false]);
  });
});
