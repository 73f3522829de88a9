import { describe, expect, it } from 'vitest';
import { Governance, type AdmissionInput } from '../../core/governance.ts';
import { parsePolicy } from '../../core/policy.ts';
import { resolveSpec } from '../../core/spec.ts';

const policy = parsePolicy({ version: 1, reasons: { required: ['set-rate', 'cancel'], minLength: 5 } });
const spec = resolveSpec({ name: 'carried', partitions: { grain: 'day', start: '2024-01-01', end: '2024-01-05' }, nodes: [{ id: 'raw', transform: 'noop' }] });
const input = (extra: Partial<AdmissionInput>): AdmissionInput => ({
  backfillId: 'carried-main',
  policy,
  policyHash: 'sha256:p',
  policyPath: 'p.yaml',
  spec,
  partitions: 4,
  limits: { rate: null, concurrency: null },
  overrides: { raw: { rate: 5 } },
  planHash: 'ph',
  request: { reason: 'going on after cancel' },
  startSignature: null,
  priority: { key: null, fairnessKey: null, fairnessWeight: null },
  now: 0,
  goesOnAs: 'resume',
  ...extra,
});

describe('a resume of a backfill whose node rate an operator set (with a reason) under reasons.required: [set-rate]', () => {
  it('is admitted on the resume reason; its carried node rates are judged by the caps only', () => {
    expect(Governance.admit(input({})).admitted).toBe(true);
    expect(Governance.admit(input({ goesOnAs: 'retry', request: { reason: 'source fixed, retry' }, limits: { rate: 3, concurrency: null } })).admitted).toBe(true);
  });
  it('a history from before the patch replays its refusal', () => {
    const legacy = Governance.admit(input({ overrideReasons: true }));
    expect(legacy.admitted).toBe(false);
    expect(!legacy.admitted && legacy.message).toContain('set-rate needs a reason');
  });
});
