/** How `worker` and `dev` end when their worker fails fatally: stopOnFailure. */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { stopOnFailure } from '../../client/serve.ts';
import { logSettings } from '../../workers/logging.ts';

const log = logSettings('text');
let stderr = '';
const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
afterEach(() => void (stderr = ''));
afterAll(() => err.mockRestore());

const stopped = { expired: null, warehouseClosed: true };

describe('stopOnFailure', () => {
  it('hands on what it waited for, and stops nothing', async () => {
    const stop = vi.fn(async () => stopped);
    expect(await stopOnFailure(Promise.resolve('SIGTERM'), stop, 'it', log)).toBe('SIGTERM');
    expect(stop).not.toHaveBeenCalled();
    expect(stderr).toBe('');
  });

  it('stops what was started before the failure ends the command, and says what failed', async () => {
    const stop = vi.fn(async () => stopped);
    await expect(stopOnFailure(Promise.reject(new Error('Worker run failed')), stop, 'it and the server', log)).rejects.toThrow('Worker run failed');
    expect(stop).toHaveBeenCalledTimes(1);
    expect(stderr).toBe('the worker failed: Worker run failed; stopping it and the server\n');
  });

  it('ends with the failure, not with an error of stopping, which it reports', async () => {
    const stop = vi.fn(async () => Promise.reject(new Error('connection already closed')));
    await expect(stopOnFailure(Promise.reject(new Error('Worker run failed')), stop, 'it', log)).rejects.toThrow('Worker run failed');
    expect(stderr).toContain('stopping it failed too: connection already closed');
  });
});
