/** `policy check` (core/policy-check.ts, client/policy-check.ts) and the loadPolicy activity (activities/policy.ts), on files in a scratch directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ANY_POLICY, POLICY_MISMATCH } from '../../core/policy-pin.ts';
import { checkSpec } from '../../core/policy-check.ts';
import { parsePolicy } from '../../core/policy.ts';
import { resolveSpec } from '../../core/spec.ts';
import { createPolicyActivities, policyFileFrom, readPolicyFile } from '../../activities/policy.ts';
import { policyFileForCheck, renderPolicyCheck, runPolicyCheck } from '../../client/policy-check.ts';
import { policyCommand } from '../../client/commands/policy.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import { specHash } from '../../activities/spec-hash.ts';
import { expandPlan } from '../../core/plan.ts';

const KEY = `AAAAC3NzaC1lZDI1NTE5AAAAI${'B'.repeat(43)}`;
let dir: string;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const SPEC = `
name: revenue
partitions: { grain: day, start: 2024-01-01, end: 2024-04-01 }
nodes:
  - { id: orders, transform: noop }
  - { id: finance_revenue, transform: noop, dependsOn: [orders], concurrency: 8 }
`;

const POLICY = `
version: 1
caps:
  backfill: { rate: 100 }
  datasets:
    - { match: "finance_*", concurrency: 4 }
approval:
  maxPartitions: 100
  datasets: [finance_*]
  allowedSignersFile: allowed_signers
windows:
  timeZone: Europe/Berlin
  allow: [{ days: weekdays, from: "22:00", to: "06:00" }]
budgets:
  retries: { limit: 50, max: 200 }
reasons:
  required: [start]
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'backfill-policy-'));
  file('allowed_signers', `# who may approve\nalice@example.com ssh-ed25519 ${KEY}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkSpec (the function behind policy check)', () => {
  const spec = resolveSpec({ name: 'small', partitions: { keys: ['a', 'b'] }, nodes: [{ id: 'orders', transform: 'noop' }] });
  const source = { path: '/etc/backfill.policy.yaml', hash: 'sha256:00' };

  it('says the start would be accepted, with the limits it gets', () => {
    const check = checkSpec(parsePolicy({ caps: { backfill: { concurrency: 10 } } }), source, { spec, partitions: 2, at: 0 });
    expect(check).toEqual({
      policy: source,
      allowed: true,
      violations: [],
      approval: { needed: false, reasons: [] },
      window: null,
      limits: { rate: null, concurrency: 10 },
      nodeRates: {},
      budgets: { retries: null, cost: null },
      partitions: 2,
    });
  });

  it('lists the violations, why it would need approval, and where the windows stand', () => {
    const policy = parsePolicy({
      approval: { maxPartitionSeconds: 100, allowedSigners: [`alice@example.com ssh-ed25519 ${KEY}`] },
      reasons: { required: true },
      windows: { allow: [{ from: '22:00', to: '06:00' }] },
    });
    const check = checkSpec(policy, source, { spec, partitions: 2, estimatedPartitionSeconds: 500, at: Date.parse('2024-05-01T23:00:00Z') });
    expect(check.allowed).toBe(false);
    expect(check.violations.map((v) => v.rule)).toEqual(['reasons.required']);
    expect(check.approval).toEqual({ needed: true, reasons: ['its estimate of 500 partition-seconds is above the 100 allowed without approval (approval.maxPartitionSeconds)'] });
    expect(check.window).toEqual({ open: true, description: 'inside the run window until Thu 06:00 UTC, in 7 h' });
  });

  it('refuses --signed-by a principal no allowed signer names, as the signed start itself would be (it said the start would be accepted)', () => {
    const policy = parsePolicy({ approval: { signedStart: true, allowedSigners: [`alice@example.com,ops@example.com ssh-ed25519 ${KEY}`] } });
    const mallory = checkSpec(policy, source, { spec, partitions: 2, signedBy: 'mallory@example.com', at: 0 });
    expect(mallory.allowed).toBe(false);
    expect(mallory.violations).toEqual([
      {
        rule: 'approval.allowedSigners',
        message: "mallory@example.com is not among the policy's allowed signers (alice@example.com, ops@example.com): a start it signs is refused (unknown_signer); sign with the key of one of them",
      },
    ]);
    expect(checkSpec(policy, source, { spec, partitions: 2, signedBy: 'ops@example.com', at: 0 })).toMatchObject({ allowed: true, violations: [] });
  });
});

describe('policy check on files', () => {
  it('reads the spec, the policy and its signers file, and answers as the start would be judged', async () => {
    const spec = file('spec.yaml', SPEC);
    const policy = file('backfill.policy.yaml', POLICY);
    const check = await runPolicyCheck({ spec, policy, now: Date.parse('2024-03-04T17:48:00Z') });
    expect(check.policy.path).toBe(policy);
    expect(check.policy.hash).toMatch(/^sha256:/);
    expect(check.partitions).toBe(182);
    expect(check.allowed).toBe(false);
    expect(check.violations.map((v) => v.rule)).toEqual(['reasons.required[0]', 'caps.datasets[0].concurrency']);
    expect(check.approval.reasons).toEqual([
      '182 partitions is above the 100 allowed without approval (approval.maxPartitions)',
      'it writes finance_revenue, which always needs approval (approval.datasets)',
    ]);
    expect(check.window?.description).toBe('outside the run windows (paused): next window opens Mon 22:00 Europe/Berlin, in 3 h 12 min');
    expect(check.limits).toEqual({ rate: 100, concurrency: null });
    // CI forces colours: compare the text without them.
    const human = stripVTControlCharacters(renderPolicyCheck(check));
    expect(human).toContain('✗ the start would be refused (2 rules):');
    expect(human).toContain('caps.datasets[0].concurrency: node finance_revenue (nodes[1]) has concurrency 8, above the cap of 4 for finance_*');
    expect(human).toContain("it would wait for an approval (backfill approve <id> --reason ... --sign-key <key>, by another of the policy's allowed signers)");
    expect(human).toContain('retry budget: 50 failed attempts (at most 200)');

    // A March-only start with a reason and within the cap.
    const narrower = await runPolicyCheck({ spec: file('ok.yaml', SPEC.replace('concurrency: 8', 'concurrency: 4')), policy, from: '2024-03-01', to: '2024-03-15', reason: 'restate March after the FX fix' });
    expect(narrower).toMatchObject({ allowed: true, partitions: 28, approval: { needed: true } });
    expect(narrower.approval.reasons).toEqual(['it writes finance_revenue, which always needs approval (approval.datasets)']);
    // A range that holds no partition is refused as the start refuses it.
    await expect(runPolicyCheck({ spec, policy, from: '2031-01-01' })).rejects.toMatchObject({ code: 'invalid_date', path: 'from', message: expect.stringContaining('holds no partition of any node') });
  });

  it('with --only-changed, judges what start --only-changed would run: the unchanged partitions are neither counted nor estimated', async () => {
    // 91 days of one node, 60 of them published by workers of this code version and unchanged since.
    const text = `name: orders\npartitions: { grain: day, start: 2024-01-01, end: 2024-04-01 }\nnodes:\n  - { id: orders, transform: noop }\n`;
    const spec = file('orders.yaml', text);
    const policy = file('small.policy.yaml', `version: 1\napproval:\n  maxPartitions: 50\n  maxPartitionSeconds: 60\n  allowedSignersFile: allowed_signers\n`);
    const warehouse = join(dir, 'orders-warehouse.db');
    const { spec: resolved } = await loadSpecFile(spec);
    const orders = expandPlan(resolved).nodes[0]!;
    const w = openWarehouse(warehouse, { inline: true });
    try {
      for (let i = 0; i < 60; i++) {
        await w.publish({
          node: 'orders', partition: orders.partitions.key(i), backfillId: 'first', runKey: 'r1', workflowId: 'w', data: { rows: [{ a: i }], selects: [] },
          checks: [], transform: 'noop', params: {}, codeVersion: 'orders@1', inputs: [], attempt: 1, startedAt: Date.now() - 1000, specHash: specHash(orders.spec),
        });
      }
    } finally {
      await w.close();
    }
    const all = await runPolicyCheck({ spec, policy, warehouse });
    expect(all.partitions).toBe(91);
    expect(all.approval.needed).toBe(true);
    expect(all.estimate!.partitionSeconds).toBeGreaterThan(85);
    const changed = await runPolicyCheck({ spec, policy, warehouse, onlyChanged: true, codeVersion: 'orders@1' });
    expect(changed.partitions).toBe(31);
    expect(changed.onlyChanged).toMatchObject({ totalToRun: 31, totalSkipped: 60 });
    // 31 partitions of about a second each: under both thresholds, as the workflow judges the start.
    expect(changed.estimate!.partitionSeconds).toBeLessThan(60);
    expect(changed.approval).toEqual({ needed: false, reasons: [] });
    expect(stripVTControlCharacters(renderPolicyCheck(changed))).toContain(`judged as start --only-changed: 31 partitions would run, 60 unchanged ones are kept (the ledger of ${warehouse})`);
    // Another code version changes them all, as it would for start --only-changed.
    expect((await runPolicyCheck({ spec, policy, warehouse, onlyChanged: true, codeVersion: 'orders@2' })).partitions).toBe(91);
  });

  it('finds the policy by flag, variable or the working directory, and says what to do without one', () => {
    expect(policyFileForCheck('a.yaml', dir)).toBe(join(process.cwd(), 'a.yaml'));
    expect(policyFileForCheck('/etc/p.yaml', dir)).toBe('/etc/p.yaml');
    expect(policyFileForCheck(undefined, dir)).toBe(join(dir, 'backfill.policy.yaml'));
    const empty = mkdtempSync(join(tmpdir(), 'backfill-nopolicy-'));
    try {
      expect(() => policyFileForCheck(undefined, empty)).toThrow(/no policy to check against: give --policy <file>/);
    } finally {
      rmSync(empty, { recursive: true });
    }
  });

  describe('the command', () => {
    let out = '';
    afterEach(() => {
      out = '';
      process.exitCode = undefined;
      vi.restoreAllMocks();
    });
    const run = async (...args: string[]) => {
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        out += String(chunk);
        return true;
      });
      await policyCommand().parseAsync(['check', ...args], { from: 'user' });
      return out;
    };

    it('prints JSON and exits 1 when the start would be refused, 0 when it would be accepted', async () => {
      const policy = file('backfill.policy.yaml', POLICY);
      const refused = JSON.parse(await run(file('spec.yaml', SPEC), '--policy', policy, '--json')) as { allowed: boolean; violations: unknown[] };
      expect(refused.allowed).toBe(false);
      expect(process.exitCode).toBe(1);
      process.exitCode = undefined;
      out = '';
      const ok = stripVTControlCharacters(await run(file('ok.yaml', SPEC.replace('concurrency: 8', 'concurrency: 4')), '--policy', policy, '--reason', 'restate Q1 after the FX fix', '--rate', '50'));
      expect(ok).toContain('✓ the start would be accepted');
      expect(ok).toContain('limits: rate 50/s');
      expect(process.exitCode).toBeUndefined();
    });

    it('judges the budgets the start would ask for, as start --retry-budget and --cost-budget', async () => {
      const policy = file('backfill.policy.yaml', POLICY);
      const spec = file('ok.yaml', SPEC.replace('concurrency: 8', 'concurrency: 4'));
      const check = async (...flags: string[]) => {
        out = '';
        return JSON.parse(await run(spec, '--policy', policy, '--reason', 'restate Q1', '--json', ...flags)) as { allowed: boolean; violations: Array<{ rule: string }>; budgets: { retries: { limit: number } | null } };
      };
      expect(await check('--retry-budget', '150')).toMatchObject({ allowed: true, budgets: { retries: { limit: 150 } } });
      expect((await check('--retry-budget', '500')).violations.map((v) => v.rule)).toEqual(['budgets.retries.max']);
      expect((await check('--cost-budget', '10')).violations.map((v) => v.rule)).toEqual(['budgets.cost']);
    });

    it('refuses --code-version without --only-changed, which alone reads it', async () => {
      const policy = file('backfill.policy.yaml', POLICY);
      await expect(run(file('spec.yaml', SPEC), '--policy', policy, '--code-version', 'x@1')).rejects.toMatchObject({ code: 'invalid_argument', message: '--code-version only matters with --only-changed: add --only-changed, or leave it out' });
    });
  });
});

describe('the loadPolicy activity', () => {
  it('answers "no policy" explicitly when the worker was given none', async () => {
    await expect(createPolicyActivities({ policyFile: undefined }).loadPolicy()).resolves.toEqual({ kind: 'none' });
    expect(policyFileFrom(undefined)).toBeUndefined();
    expect(policyFileFrom(' ')).toBeUndefined();
    expect(policyFileFrom('/a.yaml')).toBe('/a.yaml');
  });

  it('a worker without a policy passes a first judgement on while workers with one poll, and takes a passed-on one back once none does', async () => {
    const env = new MockActivityEnvironment({ taskQueue: 'shop' });
    const asked: string[] = [];
    let holders: boolean | Error = true;
    const activities = createPolicyActivities({
      policyFile: undefined,
      policyHolders: async (queue) => {
        asked.push(queue);
        if (holders instanceof Error) throw holders;
        return holders;
      },
    });
    // A first judgement, on the workflow queue: passed on.
    await expect(env.run(() => activities.loadPolicy())).resolves.toEqual({ kind: 'none', othersHaveOne: true });
    const passedOn = { backfillId: 'orders', queue: 'shop', hash: ANY_POLICY };
    // Passed on, it declines while they poll (another worker takes it)...
    await expect(env.run(() => activities.loadPolicy(passedOn))).rejects.toMatchObject({ type: POLICY_MISMATCH, message: expect.stringMatching(/other workers of the queue have one/) });
    // ...and judges by none once none polls (their policy taken away, or all stopped), as before.
    holders = false;
    await expect(env.run(() => activities.loadPolicy(passedOn))).resolves.toEqual({ kind: 'none' });
    await expect(env.run(() => activities.loadPolicy())).resolves.toEqual({ kind: 'none' });
    expect(asked).toEqual(['shop', 'shop', 'shop', 'shop']);
    // A server that refuses the question for good: judged by none. One that fails for now: the attempt fails, retried.
    holders = Object.assign(new Error('PERMISSION_DENIED: not allowed'), { code: 7 });
    await expect(env.run(() => activities.loadPolicy())).resolves.toEqual({ kind: 'none' });
    holders = Object.assign(new Error('UNAVAILABLE: connection refused'), { code: 14 });
    await expect(env.run(() => activities.loadPolicy())).rejects.toMatchObject({ type: 'PolicyHoldersUnknown', nonRetryable: false, message: expect.stringMatching(/could not tell whether workers of workflow queue 'shop' with a policy are running .*UNAVAILABLE/) });
    // A first judgement on the policy queue (patch governance-activities-regular) asks about the workflow queue it is told, not its own.
    holders = true;
    asked.length = 0;
    const onPolicyQueue = new MockActivityEnvironment({ taskQueue: 'shop.policy' });
    await expect(onPolicyQueue.run(() => activities.loadPolicy({ workflowQueue: 'shop' }))).resolves.toEqual({ kind: 'none', othersHaveOne: true });
    expect(asked).toEqual(['shop']);
    // A worker with a policy never asks.
    const governed = createPolicyActivities({ policyFile: file('governed.policy.yaml', POLICY), policyHolders: async () => { throw new Error('not asked'); } });
    await expect(env.run(() => governed.loadPolicy())).resolves.toMatchObject({ kind: 'policy' });
    await expect(env.run(() => governed.loadPolicy(passedOn))).resolves.toMatchObject({ kind: 'policy' });
  });

  it('returns the parsed policy and the hash of its text and signers, read afresh each time', async () => {
    const path = file('live.policy.yaml', POLICY);
    const activities = createPolicyActivities({ policyFile: path });
    const first = await activities.loadPolicy();
    expect(first).toMatchObject({ kind: 'policy', path, policy: { caps: { backfill: { rate: 100 } } } });
    expect(first.kind === 'policy' && first.policy.signers.map((s) => s.principals)).toEqual([['alice@example.com']]);
    // JSON-safe: it crosses Temporal's payload converter into the workflow.
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
    file('live.policy.yaml', POLICY.replace('rate: 100', 'rate: 50'));
    const second = await activities.loadPolicy();
    expect(second.kind === 'policy' && second.policy.caps.backfill.rate).toBe(50);
    expect(second.kind === 'policy' && first.kind === 'policy' && second.hash !== first.hash).toBe(true);
    // The signers file is part of the hash.
    const before = (await readPolicyFile(path)).hash;
    file('allowed_signers', `alice@example.com ssh-ed25519 ${KEY}\nbob@example.com ssh-ed25519 ${KEY}\n`);
    expect((await readPolicyFile(path)).hash).not.toBe(before);
  });

  it('fails without retries, naming the field and the fix, on a policy it cannot use', async () => {
    const failure = async (text: string | null) => {
      const path = text === null ? join(dir, 'missing.yaml') : file('bad.policy.yaml', text);
      try {
        await createPolicyActivities({ policyFile: path }).loadPolicy();
      } catch (error) {
        expect(error).toBeInstanceOf(ApplicationFailure);
        expect((error as ApplicationFailure).nonRetryable).toBe(true);
        expect((error as ApplicationFailure).type).toBe('InvalidPolicy');
        return (error as Error).message;
      }
      throw new Error('expected a failure');
    };
    expect(await failure(null)).toMatch(/cannot read the policy file .*missing.yaml: it does not exist; fix the path/);
    expect(await failure('caps: [')).toMatch(/is not valid YAML/);
    expect(await failure('caps:\n  backfill:\n    rate: fast\n')).toMatch(/caps.backfill.rate: must be number/);
    expect(await failure('approval:\n  allowedSignersFile: nobody\n')).toMatch(/cannot read the allowed signers file .*nobody: it does not exist; fix the path \(approval.allowedSignersFile\)/);
  });
});
