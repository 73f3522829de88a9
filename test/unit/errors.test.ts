import { describe, it, expect } from 'vitest';
import { BackfillError, ERROR_CODES, formatPath, isErrorCode } from '../../core/errors.ts';

describe('formatPath', () => {
  it('writes keys with dots and indexes with brackets', () => {
    expect(formatPath(['nodes', 2, 'dependsOn', 0])).toBe('nodes[2].dependsOn[0]');
    expect(formatPath(['nodes', 0, 'partitions', 'start'])).toBe('nodes[0].partitions.start');
    expect(formatPath(['name'])).toBe('name');
    expect(formatPath([])).toBe('');
    expect(formatPath([3, 'a'])).toBe('[3].a');
    expect(formatPath(['keys', 0, 1])).toBe('keys[0][1]');
  });
});

describe('BackfillError', () => {
  it('is an Error with a code, a message and a path', () => {
    const error = new BackfillError('unknown_node', 'nodes[1].dependsOn[0]: nope', 'nodes[1].dependsOn[0]');
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(BackfillError);
    expect(error.name).toBe('BackfillError');
    expect(error.code).toBe('unknown_node');
    expect(error.path).toBe('nodes[1].dependsOn[0]');
    expect(error.message).toBe('nodes[1].dependsOn[0]: nope');
  });

  it('serialises to { code, message, path? }', () => {
    expect(new BackfillError('cycle', 'loop', 'nodes[0]').toJSON()).toEqual({ code: 'cycle', message: 'loop', path: 'nodes[0]' });
    const noPath = new BackfillError('timeout', 'too slow').toJSON();
    expect(noPath).toEqual({ code: 'timeout', message: 'too slow' });
    expect('path' in noPath).toBe(false);
    expect(JSON.parse(JSON.stringify({ error: new BackfillError('not_found', 'gone') }))).toEqual({
      error: { code: 'not_found', message: 'gone' },
    });
  });
});

describe('refusals cross the wire with their code', () => {
  it('an ApplicationFailure whose type is the code is rebuilt into the same BackfillError', async () => {
    const { ApplicationFailure } = await import('@temporalio/common');
    const { refusal, refusedError } = await import('../../workflows/definitions.ts');
    for (const code of ERROR_CODES) {
      const failure = refusal(new BackfillError(code, `refused: ${code}`, 'node'));
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect((failure as InstanceType<typeof ApplicationFailure>).type).toBe(code);
      expect(refusedError(failure)?.toJSON()).toEqual({ code, message: `refused: ${code}`, path: 'node' });
    }
    expect(refusedError(refusal(new BackfillError('finishing', 'no path')))?.toJSON()).toEqual({ code: 'finishing', message: 'no path' });
    // Anything else is not a refusal: another failure type, or another error.
    expect(refusedError(ApplicationFailure.create({ message: 'x', type: 'BackfillError' }))).toBeUndefined();
    expect(refusedError(new Error('x'))).toBeUndefined();
    const other = new TypeError('x');
    expect(refusal(other)).toBe(other);
  });

  it('isErrorCode knows the codes and nothing else', () => {
    expect(ERROR_CODES.every(isErrorCode)).toBe(true);
    expect(isErrorCode('finishing')).toBe(true);
    expect(isErrorCode('BackfillError')).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
  });
});
