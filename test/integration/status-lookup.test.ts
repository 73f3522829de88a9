/**
 * `status` connects without looking the namespace up first (one call less at start): what it
 * cannot find is still named right, the namespace when that is what is missing, else the
 * backfill. The command line as a user runs it, against the shared dev server.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers.ts';

type ErrorJson = { error: { code: string; message: string } };

describe('status of something that is not there', () => {
  it('a namespace that does not exist is named, with how to create it', async () => {
    const missing = await runCli<ErrorJson>(['status', 'any-backfill', '--namespace', 'no-such-namespace', '--json']);
    expect(missing.code).not.toBe(0);
    expect(missing.json?.error.code).toBe('not_found');
    expect(missing.json?.error.message).toMatch(/namespace 'no-such-namespace' does not exist .*temporal operator namespace create/);
  });

  it('a backfill that does not exist in a namespace that does is named', async () => {
    const missing = await runCli<ErrorJson>(['status', 'no-such-backfill', '--json']);
    expect(missing.code).not.toBe(0);
    expect(missing.json?.error).toMatchObject({ code: 'not_found', message: expect.stringContaining("no backfill with id 'no-such-backfill' in namespace default") });
  });
});
