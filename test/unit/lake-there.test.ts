/**
 * Whether a lake is there, as a reader asks before it opens one (opening makes one): a path it
 * cannot look into, or a file where the lake's directory should be, is said, not taken for "no
 * lake" (which made `lineage` say nothing was written, and `plan --estimate` drop the history).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { lakeThere } from '../../activities/warehouse/lake/adapter.ts';

// A process run as root reads any directory: the permission a user lacks is the file system's answer, given here.
vi.mock('node:fs', async (original) => {
  const fs = await original<typeof import('node:fs')>();
  const statSync = ((path: string, options?: object) => {
    if (String(path).includes('/locked/')) throw Object.assign(new Error(`EACCES: permission denied, stat '${String(path)}'`), { code: 'EACCES' });
    return fs.statSync(path, options);
  }) as typeof fs.statSync;
  return { ...fs, default: { ...fs, statSync }, statSync };
});

describe('lakeThere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lake-there-'));

  it('is false where nothing is, and true once the catalogue is there', () => {
    expect(lakeThere(join(dir, 'none'))).toBe(false);
    const lake = join(dir, 'lake');
    mkdirSync(join(lake, '_backfill'), { recursive: true });
    expect(lakeThere(lake)).toBe(false);
    writeFileSync(join(lake, '_backfill', 'catalog.duckdb'), '');
    expect(lakeThere(lake)).toBe(true);
  });

  it('says a file where the directory should be is not a directory', () => {
    const file = join(dir, 'afile');
    writeFileSync(file, 'not a lake');
    expect(() => lakeThere(file)).toThrow(`the lake ${file} is not a directory (a file is there, or in its _backfill): give lake:/// the lake's directory`);
  });

  it('says a lake this user may not read cannot be read, and how to fix it', () => {
    const locked = join(dir, 'locked', 'lake');
    expect(() => lakeThere(locked)).toThrow(`the lake ${locked} cannot be read by this user (permission denied): give it read access to the lake's directory, or run as a user who has it`);
  });
});
