/** `backfill report --output`: a place the report cannot be written is refused before anything is read, naming why. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

describe('backfill report --output', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-output-'));
  // No server is asked: the address would fail the command otherwise, with another message.
  const report = (output: string) => runCli('report', 'shop-2024', '--output', output, '--address', '127.0.0.1:1');

  it('in a folder that does not exist: refused at once, not a raw ENOENT after the report was gathered', async () => {
    const { code, stderr } = await report(join(dir, 'missing', 'r.html'));
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot write the report to ${join(dir, 'missing', 'r.html')}: its folder does not exist; give --output a file in a folder that exists (or '-' for stdout)`);
  });

  it('naming a folder: refused, saying it is a folder', async () => {
    const { code, stderr } = await report(dir);
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot write the report to ${dir}: it is a folder`);
  });

  it('a file in a folder that exists goes on to read the backfill (here: the server is not there)', async () => {
    const { stderr } = await report(join(dir, 'r.html'));
    expect(stderr).not.toContain('cannot write the report');
  });
});
