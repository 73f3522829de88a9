import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import {
  carriedOverrideViolations,
  carriedOverridesAskedReasons,
  checkControl,
  checkStart,
  describeViolations,
  matches,
  maxSignatureAgeMs,
  parsePolicy,
  policyHash,
  specViolations,
  type Policy,
  type PolicyInput,
  type StartRequest,
} from '../../core/policy.ts';
import { resolveSpec, type SpecInput } from '../../core/spec.ts';
import { thrownBackfillError } from './backfill-error.ts';

const KEY = `AAAAC3NzaC1lZDI1NTE5AAAAI${'A'.repeat(43)}`;
const SIGNER = `alice@example.com ssh-ed25519 ${KEY}`;

const policy = (input: PolicyInput): Policy => parsePolicy(input);

const spec = (nodes: SpecInput['nodes'], extra: Partial<SpecInput> = {}) =>
  resolveSpec({ name: 'revenue', partitions: { grain: 'day', start: '2024-01-01', end: '2024-02-01' }, nodes, ...extra });

const twoNodes = spec([
  { id: 'orders', transform: 'noop', concurrency: 8 },
  { id: 'finance_revenue', transform: 'noop', dependsOn: ['orders'], rate: 5, taskQueue: 'warehouse' },
]);

const start = (p: Policy, request: Partial<StartRequest> = {}) => checkStart(p, { spec: twoNodes, partitions: 62, ...request });

describe('parsePolicy', () => {
  it('an empty policy allows everything and sets nothing', () => {
    const p = policy({});
    expect(p).toMatchObject({ version: 1, caps: { backfill: {}, datasets: [], taskQueues: [] }, budgets: {}, reasons: { required: false, minLength: 10 }, signers: [] });
    expect(start(p)).toEqual({ violations: [], waitFor: [], limits: { rate: null, concurrency: null }, nodeRates: {}, budgets: { retries: null, cost: null } });
  });

  it('reads a whole policy from YAML', () => {
    const text = `
version: 1
caps:
  backfill: { rate: 200, concurrency: 50 }
  datasets:
    - { match: "finance_*", rate: 10, concurrency: 4 }
  taskQueues:
    - { match: warehouse, rate: 100, concurrency: 16 }
approval:
  maxPartitions: 10000
  maxPartitionSeconds: 360000
  datasets: [finance_*]
  signedStart: true
  allowedSigners:
    - ${SIGNER}
  maxSignatureAge: 30m
windows:
  timeZone: Europe/Berlin
  allow: [{ days: weekdays, from: "22:00", to: "06:00" }]
  outside: { rate: 50 }
budgets:
  retries: 100
  cost: { metric: reported, unit: bytes scanned, limit: 1e12, max: 5e12 }
reasons:
  required: [start, set-rate, set-budget]
  minLength: 12
`;
    const p = parsePolicy(parseDocument(text).toJS());
    expect(p.signers).toEqual([{ principals: ['alice@example.com'], key: KEY, line: 1 }]);
    expect(p.budgets).toEqual({ retries: { limit: 100 }, cost: { metric: 'reported', unit: 'bytes scanned', limit: 1e12, max: 5e12 } });
    expect(p.windows?.outside).toEqual({ rate: 50 });
    expect(maxSignatureAgeMs(p)).toBe(1_800_000);
  });

  const refused = (input: unknown, allowedSignersText?: string) => thrownBackfillError(() => parsePolicy(input, { path: 'backfill.policy.yaml', ...(allowedSignersText !== undefined ? { allowedSignersText } : {}) }));

  it('names the field and the fix of every mistake', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ caps: { backfill: { rate: -1 } } }, 'caps.backfill.rate', /above 0/],
      [{ caps: { backfill: { concurency: 4 } } }, 'caps.backfill', /unknown field\(s\) 'concurency' \(did you mean 'concurrency'\?\)/],
      [{ caps: { datasets: [{ match: 'orders/*', rate: 1 }] } }, 'caps.datasets[0].match', /glob/],
      [{ caps: { datasets: [{ rate: 1 }] } }, 'caps.datasets[0].match', /is required/],
      [{ caps: { taskQueues: [{ match: 'q', concurrency: 0.5 }] } }, 'caps.taskQueues[0].concurrency', /whole number/],
      [{ approval: { maxPartitions: 10.5, allowedSigners: [SIGNER] } }, 'approval.maxPartitions', /whole number of partitions/],
      [{ approval: { maxSignatureAge: 'an hour', allowedSigners: [SIGNER] } }, 'approval.maxSignatureAge', /duration/],
      [{ budgets: { retries: 0 } }, 'budgets.retries.limit', /above 0/],
      [{ budgets: { retries: { limit: 10, max: 5 } } }, 'budgets.retries.max', /max >= limit/],
      [{ budgets: { cost: { metric: 'dollars', limit: 1 } } }, 'budgets.cost.metric', /partitionSeconds, rows, reported/],
      [{ budgets: { cost: { metric: 'reported', limit: 1 } } }, 'budgets.cost.unit', /bytes scanned/],
      [{ reasons: { required: ['start', 'deploy'] } }, 'reasons.required[1]', /must be one of start/],
      [{ windows: { timeZone: 'Europe/Berln', allow: [{ from: '22:00', to: '06:00' }] } }, 'windows.timeZone', /IANA name such as Europe\/Berlin/],
      [{ version: 2 }, 'version', /must be 1/],
      [{ approval: { maxPartitions: 100 } }, 'approval.allowedSigners', /is empty, but the policy asks for approvals/],
      [{ approval: { allowedSigners: ['alice@example.com ssh-rsa AAAAB3NzaC1yc2E'] } }, 'approval.allowedSigners[0]', /ssh-rsa is not accepted/],
      [{ approval: { allowedSigners: [SIGNER, 'bob@* ssh-ed25519 ' + KEY] } }, 'approval.allowedSigners[1]', /no patterns/],
      [{ approval: { allowedSignersFile: 'allowed_signers' } }, 'approval.allowedSignersFile', /was not read/],
      [null, 'policy', /is empty/],
    ];
    for (const [input, path, message] of cases) {
      const error = refused(input);
      expect(error.code, path).toBe('invalid_policy');
      expect(error.path, JSON.stringify(input)).toBe(path);
      expect(error.message).toMatch(message);
      expect(error.message.startsWith(`backfill.policy.yaml: ${path}: `)).toBe(true);
    }
  });

  it('reads the allowed signers file given with it, and names its bad line', () => {
    const p = parsePolicy({ approval: { allowedSignersFile: 'allowed_signers', maxPartitions: 5 } }, { allowedSignersText: `# team\n${SIGNER}\n` });
    expect(p.signers).toEqual([{ principals: ['alice@example.com'], key: KEY, line: 2 }]);
    const error = refused({ approval: { allowedSignersFile: 'allowed_signers' } }, `${SIGNER}\nbob@example.com cert-authority ssh-ed25519 ${KEY}\n`);
    expect(error.message).toMatch(/approval.allowedSignersFile: \(allowed_signers\) line 2: cert-authority is not supported/);
  });
});

describe('policyHash', () => {
  it('hashes the text and the signers file, so that either change shows', () => {
    const a = policyHash('version: 1\n');
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(policyHash('version: 1\n')).toBe(a);
    expect(policyHash('version: 1 \n')).not.toBe(a);
    expect(policyHash('version: 1\n', SIGNER)).not.toBe(a);
    expect(policyHash('version: 1\n', SIGNER)).not.toBe(policyHash('version: 1\n', `${SIGNER}x`));
  });
});

describe('matches', () => {
  it('reads * and ? and nothing else as patterns', () => {
    expect(matches('finance_*', 'finance_revenue')).toBe(true);
    expect(matches('finance_*', 'finance_')).toBe(true);
    expect(matches('finance_*', 'my_finance_revenue')).toBe(false);
    expect(matches('orders', 'orders')).toBe(true);
    expect(matches('orders', 'orders_v2')).toBe(false);
    expect(matches('day?', 'day1')).toBe(true);
    expect(matches('day?', 'day12')).toBe(false);
    expect(matches('a.b', 'aXb')).toBe(false);
    expect(matches('q-*', 'q-1')).toBe(true);
    expect(matches('*', '')).toBe(true);
    expect(matches('a*b*c', 'axxbyyc')).toBe(true);
    expect(matches('a*b*c', 'axxbyy')).toBe(false);
    expect(matches('*_raw', 'orders_raw')).toBe(true);
    expect(matches('**x', 'yx')).toBe(true);
  });

  it('takes no time over a pattern of many stars', () => {
    expect(matches(`${'*a'.repeat(30)}*b`, 'a'.repeat(200))).toBe(false);
  });
});

describe('checkStart', () => {
  it('holds a start to the most urgent priority and the largest fairness weight; unset ones are the server defaults, 3 and 1', () => {
    const p = policy({ priority: { highest: 2, maxFairnessWeight: 4 } });
    expect(start(p, { priority: { key: 2, fairnessWeight: 4 } }).violations).toEqual([]);
    expect(start(p, { priority: { key: 5, fairnessWeight: 0.5 } }).violations).toEqual([]);
    expect(start(p, { priority: { key: 1, fairnessWeight: 10 } }).violations).toEqual([
      { rule: 'priority.highest', message: 'priority 1 is more urgent than this policy allows (the most urgent is 2; 1 is the most urgent): start with --priority 2 or a larger number' },
      { rule: 'priority.maxFairnessWeight', message: "a fairness weight of 10 is above the policy's most, 4: start with --fairness-weight 4 or less" },
    ]);
    // Unset: the server schedules it at priority 3, weight 1. A bulk-only policy refuses that.
    expect(start(p).violations).toEqual([]);
    expect(start(p, { priority: { key: null, fairnessWeight: null } }).violations).toEqual([]);
    const bulk = policy({ priority: { highest: 4, maxFairnessWeight: 0.5 } });
    expect(start(bulk).violations.map((v) => v.message)).toEqual([
      "priority 3 (unset, so the server's default) is more urgent than this policy allows (the most urgent is 4; 1 is the most urgent): start with --priority 4 or a larger number",
      "a fairness weight of 1 (unset, so the server's default) is above the policy's most, 0.5: start with --fairness-weight 0.5 or less",
    ]);
    expect(start(bulk, { priority: { key: 4, fairnessWeight: 0.5 } }).violations).toEqual([]);
  });

  it('fills an unset backfill limit with the cap, and refuses one set above it', () => {
    const p = policy({ caps: { backfill: { rate: 100, concurrency: 20 } } });
    expect(start(p)).toMatchObject({ violations: [], limits: { rate: 100, concurrency: 20 } });
    expect(start(p, { limits: { rate: 50, concurrency: 10 } })).toMatchObject({ violations: [], limits: { rate: 50, concurrency: 10 } });
    const over = start(p, { limits: { rate: 150, concurrency: 30 } });
    expect(over.violations).toEqual([
      { rule: 'caps.backfill.rate', message: "the backfill's rate 150/s is above the policy's cap of 100/s: start with --rate 100 or less" },
      { rule: 'caps.backfill.concurrency', message: "the backfill's concurrency 30 is above the policy's cap of 20: start with --concurrency 20 or less" },
    ]);
    // The spec's own limits count when the start gives none.
    expect(checkStart(p, { spec: spec([{ id: 'a', transform: 'noop' }], { rate: 500 }), partitions: 1 }).violations[0]!.rule).toBe('caps.backfill.rate');
  });

  it("names the way under a backfill cap that the judged action has: a start's flags, a resume's or retry-failed's own", () => {
    const p = policy({ caps: { backfill: { rate: 50, concurrency: 4 } } });
    const over = { limits: { rate: 100, concurrency: 8 } };
    const messages = (goesOnAs?: 'resume' | 'retry') => start(p, { ...over, ...(goesOnAs ? { goesOnAs } : {}) }).violations.map((v) => v.message);
    expect(messages()).toEqual([
      "the backfill's rate 100/s is above the policy's cap of 50/s: start with --rate 50 or less",
      "the backfill's concurrency 8 is above the policy's cap of 4: start with --concurrency 4 or less",
    ]);
    // A new run of an ended backfill keeps its last run's limits (resume --spec does not lower them) unless the resume gives its own.
    const resumed = messages('resume');
    expect(resumed).toEqual([
      "the backfill's rate 100/s is above the policy's cap of 50/s: a resume goes on with the limits of the run it follows (a spec's limits do not replace them) unless it is given its own: backfill resume <this backfill's id> --rate 50 (or less)",
      "the backfill's concurrency 8 is above the policy's cap of 4: a resume goes on with the limits of the run it follows (a spec's limits do not replace them) unless it is given its own: backfill resume <this backfill's id> --concurrency 4 (or less)",
    ]);
    const retried = messages('retry');
    expect(retried[0]).toMatch(/: a retry-failed goes on with the limits of the run it follows .*: backfill retry-failed <this backfill's id> --rate 50 \(or less\)$/);
    expect(retried.join('\n')).not.toMatch(/start with --|--rerun/);
  });

  it('names, for a resume or retry-failed, a new start for whatever else it carries from its last run (priority, fairness weight, budgets), and its own --sign-key for a signature', () => {
    const p = policy({
      priority: { highest: 2, maxFairnessWeight: 0.5 },
      budgets: { retries: { limit: 10, max: 20 } },
      approval: { signedStart: true, allowedSigners: [SIGNER] },
    });
    const asked = { priority: { key: 1, fairnessWeight: 2 }, budgets: { retries: 30 } };
    const messages = (goesOnAs?: 'resume' | 'retry') => Object.fromEntries(start(p, { ...asked, ...(goesOnAs ? { goesOnAs } : {}) }).violations.map((v) => [v.rule, v.message]));
    expect(messages()).toMatchObject({
      'priority.highest': expect.stringMatching(/: start with --priority 2 or a larger number$/),
      'priority.maxFairnessWeight': expect.stringMatching(/: start with --fairness-weight 0.5 or less$/),
      'budgets.retries.max': expect.stringMatching(/: ask for 20 or less$/),
      'approval.signedStart': 'the policy wants every start signed: start with --sign-key <your ssh-ed25519 key> (one of the allowed signers)',
    });
    const again = (flags: string) => `so start it again: backfill start <spec> --id <this backfill's id> --rerun ${flags} (with --only-changed`;
    const resumed = messages('resume');
    expect(resumed['priority.highest']).toContain(`: a resume goes on with the priority of the run it follows (resume has no --priority), ${again('--priority 2')}`);
    expect(resumed['priority.maxFairnessWeight']).toContain(`(resume has no --fairness-weight), ${again('--fairness-weight 0.5')}`);
    expect(resumed['budgets.retries.max']).toContain(`: a resume goes on with the budgets of the run it follows (resume has no --retry-budget), ${again('--retry-budget 20')}`);
    expect(messages('retry')['approval.signedStart']).toBe(
      'the policy wants every start signed: a retry-failed starts a new run, so sign it: backfill retry-failed <id> --sign-key <your ssh-ed25519 key> (one of the allowed signers)',
    );
    expect(resumed['approval.signedStart']).toContain(': a resume starts a new run, so sign it: backfill resume <id> --sign-key <your ssh-ed25519 key>');
  });

  it("names, for a resume, a spec's node concurrency or the resume's own --concurrency under a task queue's cap", () => {
    const p = policy({ caps: { taskQueues: [{ match: 'backfill', concurrency: 6 }] } });
    expect(start(p, { goesOnAs: 'resume' }).violations.map((v) => v.message)).toEqual([
      "up to 8 partitions would run at once on task queue backfill (orders), above its cap of 6: lower the nodes' concurrency in a spec (resume --spec <file>), or the backfill's: backfill resume <this backfill's id> --concurrency 6",
    ]);
  });

  it("names, for a running backfill's new spec, the spec's node concurrency or set-concurrency (not a start's --concurrency)", () => {
    const p = policy({ caps: { taskQueues: [{ match: 'backfill', concurrency: 6 }] } });
    expect(specViolations(p, twoNodes, null, 'running').map((v) => v.message)).toEqual([
      "up to 8 partitions would run at once on task queue backfill (orders), above its cap of 6: lower the nodes' concurrency in this spec, or the backfill's first (backfill set-concurrency <this backfill's id> 6) and send the spec again",
    ]);
    expect(specViolations(p, twoNodes, 6, 'running')).toEqual([]);
  });

  it("names a new start for a node limit an operator set on the run a resume follows (set-rate applies only to a running backfill)", () => {
    const p = policy({ caps: { datasets: [{ match: 'orders', rate: 50, concurrency: 4 }] } });
    expect(carriedOverrideViolations(p, { orders: { rate: 100, concurrency: 8 } }, twoNodes, 'retry').map((v) => v.message)).toEqual([
      "a rate of 100/s for orders is above the cap of 50/s for orders: an operator set it on the run this one follows, and a retry-failed keeps it (set 50 or less applies only to a running backfill), so start it again: backfill start <spec> --id <this backfill's id> --rerun (with --only-changed, only the partitions not yet published, or changed since, run again)",
      expect.stringMatching(/^a concurrency of 8 for orders is above the cap of 4 for orders: an operator set it .* --rerun \(/),
    ]);
    // A control of a running backfill keeps its own fix.
    expect(checkControl(p, { action: 'set-rate', rate: 100, node: 'orders' }, twoNodes)[0]!.message).toMatch(/: set 50 or less$/);
  });

  it('does not ask a reason again of node limits carried from the run a resume follows: they were judged, with their reasons, when set', () => {
    const p = policy({ reasons: { required: ['set-rate', 'set-concurrency', 'cancel'], minLength: 5 }, caps: { datasets: [{ match: 'orders', rate: 50 }] } });
    expect(carriedOverrideViolations(p, { orders: { rate: 5, concurrency: 2 } }, twoNodes, 'resume')).toEqual([]);
    // Their caps still judge them.
    expect(carriedOverrideViolations(p, { orders: { rate: 100 } }, twoNodes, 'retry').map((v) => v.rule)).toEqual(['caps.datasets[0].rate']);
    // Before the patch carried-overrides-caps-only (a history that replays): judged as a control sent with no reason.
    expect(carriedOverrideViolations(p, { orders: { rate: 5 } }, twoNodes, 'resume', { reasons: true }).map((v) => v.message)).toEqual([
      'set-rate needs a reason: add --reason "why" (at least 5 characters)',
    ]);
    expect(carriedOverridesAskedReasons(p, { orders: { rate: 5 } })).toBe(true);
    expect(carriedOverridesAskedReasons(policy({ reasons: { required: ['cancel'] } }), { orders: { rate: 5 } })).toBe(false);
    expect(carriedOverridesAskedReasons(p, {})).toBe(false);
    // A control of a running backfill is still asked its reason.
    expect(checkControl(p, { action: 'set-rate', rate: 5, node: 'orders' }, twoNodes).map((v) => v.rule)).toEqual(['reasons.required[0]']);
  });

  it('caps every node a dataset pattern matches: an unset rate takes the cap, one above it or a concurrency above it is refused', () => {
    const p = policy({ caps: { datasets: [{ match: 'finance_*', rate: 2, concurrency: 4 }, { match: 'orders', rate: 50, concurrency: 4 }] } });
    const decision = start(p);
    expect(decision.nodeRates).toEqual({ orders: 50 });
    expect(decision.violations).toEqual([
      { rule: 'caps.datasets[1].concurrency', message: 'node orders (nodes[0]) has concurrency 8, above the cap of 4 for orders: set its concurrency to 4 or less' },
      { rule: 'caps.datasets[0].rate', message: 'node finance_revenue (nodes[1]) has rate 5/s, above the cap of 2/s for finance_*: set its rate to 2 or less' },
    ]);
    // Two caps on one node: the lower rate wins.
    const both = policy({ caps: { datasets: [{ match: 'ord*', rate: 30 }, { match: 'orders', rate: 20 }] } });
    expect(start(both).nodeRates).toEqual({ orders: 20 });
  });

  it("caps what one backfill may run at once on a task queue", () => {
    const p = policy({ caps: { taskQueues: [{ match: 'backfill', concurrency: 6 }, { match: 'ware*', concurrency: 4 }] } });
    expect(start(p).violations).toEqual([
      {
        rule: 'caps.taskQueues[0].concurrency',
        message: 'up to 8 partitions would run at once on task queue backfill (orders), above its cap of 6: start with --concurrency 6 or lower the nodes\' concurrency',
      },
    ]);
    // The backfill's own concurrency bounds it.
    expect(start(p, { limits: { concurrency: 4 } }).violations).toEqual([]);
  });

  it('says why a backfill needs approval: its size, its estimate, a protected dataset', () => {
    const p = policy({ approval: { maxPartitions: 50, maxPartitionSeconds: 3600, datasets: ['finance_*'], allowedSigners: [SIGNER] } });
    const decision = start(p, { partitions: 62, estimatedPartitionSeconds: 7200 });
    expect(decision.violations).toEqual([]);
    expect(decision.waitFor).toEqual([
      {
        kind: 'approval',
        reasons: [
          '62 partitions is above the 50 allowed without approval (approval.maxPartitions)',
          'its estimate of 7,200 partition-seconds is above the 3,600 allowed without approval (approval.maxPartitionSeconds)',
          'it writes finance_revenue, which always needs approval (approval.datasets)',
        ],
      },
    ]);
    const small = policy({ approval: { maxPartitions: 100, maxPartitionSeconds: 3600, allowedSigners: [SIGNER] } });
    expect(start(small, { estimatedPartitionSeconds: 3600 }).waitFor).toEqual([]);
    // No estimate against an estimate threshold: it waits (the policy cannot tell).
    expect(start(small).waitFor[0]).toEqual({ kind: 'approval', reasons: [expect.stringMatching(/no estimate of its partition-seconds/)] });
  });

  it('refuses an unsigned start when the policy wants starts signed', () => {
    const p = policy({ approval: { signedStart: true, allowedSigners: [SIGNER] } });
    expect(start(p).violations).toEqual([{ rule: 'approval.signedStart', message: expect.stringMatching(/start with --sign-key/) }]);
    expect(start(p, { signedBy: 'alice@example.com' }).violations).toEqual([]);
  });

  it('requires a reason long enough, for every action or the listed ones', () => {
    const all = policy({ reasons: { required: true } });
    expect(start(all).violations).toEqual([{ rule: 'reasons.required', message: 'start needs a reason: add --reason "why" (at least 10 characters)' }]);
    expect(start(all, { reason: '   fix  ' }).violations).toEqual([{ rule: 'reasons.minLength', message: 'the reason "fix" is too short for start: say why in at least 10 characters' }]);
    expect(start(all, { reason: 'restate January after the FX fix' }).violations).toEqual([]);
    const listed = policy({ reasons: { required: ['pause', 'start'], minLength: 3 } });
    expect(start(listed).violations[0]!.rule).toBe('reasons.required[1]');
    expect(checkControl(listed, { action: 'resume' })).toEqual([]);
  });

  it('a new run of an ended backfill is a start and the action that started it: the reasons rule of either binds it', () => {
    const resume = policy({ reasons: { required: ['resume'], minLength: 3 } });
    expect(start(resume).violations).toEqual([]);
    expect(start(resume, { goesOnAs: 'resume' }).violations).toEqual([{ rule: 'reasons.required[0]', message: expect.stringMatching(/^resume needs a reason/) }]);
    expect(start(resume, { goesOnAs: 'resume', reason: 'source fixed' }).violations).toEqual([]);
    // retry-failed is the `retry` action, as a retry-failed of a running backfill.
    const retry = policy({ reasons: { required: ['retry'], minLength: 3 } });
    expect(start(retry, { goesOnAs: 'resume' }).violations).toEqual([]);
    expect(start(retry, { goesOnAs: 'retry' }).violations).toEqual([{ rule: 'reasons.required[0]', message: expect.stringMatching(/^retry needs a reason/) }]);
    // The start's rule still applies, and one missing reason is one violation.
    const both = policy({ reasons: { required: ['start', 'resume'], minLength: 3 } });
    expect(start(both, { goesOnAs: 'resume' }).violations.map((v) => v.rule)).toEqual(['reasons.required[0]']);
  });

  it('gives budgets: the policy limit, or what the start asks within the max', () => {
    const p = policy({ budgets: { retries: { limit: 100, max: 500 }, cost: { metric: 'partitionSeconds', limit: 3600, max: 7200 } } });
    expect(start(p).budgets).toEqual({ retries: { limit: 100, max: 500 }, cost: { metric: 'partitionSeconds', unit: 'partition-seconds', limit: 3600, max: 7200 } });
    expect(start(p, { budgets: { retries: 20, cost: 7200 } })).toMatchObject({ violations: [], budgets: { retries: { limit: 20 }, cost: { limit: 7200 } } });
    expect(start(p, { budgets: { retries: 501, cost: 8000 } }).violations.map((v) => v.rule)).toEqual(['budgets.retries.max', 'budgets.cost.max']);
    // A budget the policy does not define: retries may be asked for; a cost needs the policy's metric.
    expect(start(policy({}), { budgets: { retries: 5 } }).budgets.retries).toEqual({ limit: 5, max: null });
    expect(start(policy({}), { budgets: { cost: 5 } }).violations[0]!.rule).toBe('budgets.cost');
    expect(start(policy({ budgets: { cost: { metric: 'rows', limit: 1e9 } } })).budgets.cost).toEqual({ metric: 'rows', unit: 'rows', limit: 1e9, max: null });
  });

  it('waits for a run window when it starts outside one that pauses', () => {
    const p = policy({ windows: { timeZone: 'Europe/Berlin', allow: [{ days: 'weekdays', from: '22:00', to: '06:00' }] } });
    const monday = Date.parse('2024-03-04T17:48:00Z');
    expect(start(p, { at: monday }).waitFor).toEqual([
      { kind: 'window', opensAt: Date.parse('2024-03-04T21:00:00Z'), description: 'outside the run windows (paused): next window opens Mon 22:00 Europe/Berlin, in 3 h 12 min' },
    ]);
    expect(start(p, { at: Date.parse('2024-03-04T23:00:00Z') }).waitFor).toEqual([]);
    // Outside a window that only slows down, nothing waits.
    const slow = policy({ windows: { timeZone: 'Europe/Berlin', allow: [{ from: '22:00', to: '06:00' }], outside: { rate: 50 } } });
    expect(start(slow, { at: monday }).waitFor).toEqual([]);
  });

  it('reports every violation at once, each naming its rule', () => {
    const p = policy({ caps: { backfill: { rate: 1 } }, reasons: { required: true } });
    const { violations } = start(p, { limits: { rate: 2 } });
    expect(describeViolations(violations)).toBe(
      'reasons.required: start needs a reason: add --reason "why" (at least 10 characters)\ncaps.backfill.rate: the backfill\'s rate 2/s is above the policy\'s cap of 1/s: start with --rate 1 or less',
    );
  });
});

describe('checkControl', () => {
  const p = policy({
    caps: { backfill: { rate: 100, concurrency: 20 }, datasets: [{ match: 'finance_*', rate: 2, concurrency: 2 }], taskQueues: [{ match: 'warehouse', rate: 40, concurrency: 3 }] },
    budgets: { retries: { limit: 10, max: 50 }, cost: { metric: 'rows', limit: 1e6, max: 5e6 } },
    reasons: { required: ['set-rate', 'set-budget', 'cancel'] },
  });
  const why = 'the warehouse is quiet tonight';

  it('holds set-rate to the backfill and dataset caps; unlimited is above any cap', () => {
    expect(checkControl(p, { action: 'set-rate', rate: 100, reason: why })).toEqual([]);
    expect(checkControl(p, { action: 'set-rate', rate: 101, reason: why })).toEqual([{ rule: 'caps.backfill.rate', message: "a backfill rate of 101/s is above the policy's cap of 100/s: set 100 or less" }]);
    expect(checkControl(p, { action: 'set-rate', rate: null, reason: why })[0]!.message).toMatch(/^a backfill rate of unlimited/);
    expect(checkControl(p, { action: 'set-rate', rate: 3, node: 'finance_revenue', reason: why })).toEqual([
      { rule: 'caps.datasets[0].rate', message: 'a rate of 3/s for finance_revenue is above the cap of 2/s for finance_*: set 2 or less' },
    ]);
    // A node no dataset cap matches answers to none (the backfill's rate still bounds it).
    expect(checkControl(p, { action: 'set-rate', rate: 1000, node: 'orders', reason: why })).toEqual([]);
  });

  it('holds set-concurrency to the backfill, dataset and task queue caps', () => {
    expect(checkControl(p, { action: 'set-concurrency', concurrency: 21 })[0]!.rule).toBe('caps.backfill.concurrency');
    expect(checkControl(p, { action: 'set-concurrency', concurrency: null })[0]!.message).toMatch(/unlimited/);
    expect(checkControl(p, { action: 'set-concurrency', concurrency: 3, node: 'finance_revenue' }, twoNodes).map((v) => v.rule)).toEqual(['caps.datasets[0].concurrency']);
    expect(checkControl(p, { action: 'set-concurrency', concurrency: 4, node: 'finance_revenue' }, twoNodes).map((v) => v.rule)).toEqual([
      'caps.datasets[0].concurrency',
      'caps.taskQueues[0].concurrency',
    ]);
    expect(checkControl(p, { action: 'set-concurrency', concurrency: 8, node: 'orders' }, twoNodes)).toEqual([]);
  });

  it('holds set-queue-rate to the task queue caps', () => {
    expect(checkControl(p, { action: 'set-queue-rate', queue: 'warehouse', rate: 40 })).toEqual([]);
    expect(checkControl(p, { action: 'set-queue-rate', queue: 'warehouse', rate: 41 })).toEqual([
      { rule: 'caps.taskQueues[0].rate', message: 'a rate of 41/s for task queue warehouse is above its cap of 40/s: set 40 or less' },
    ]);
    expect(checkControl(p, { action: 'set-queue-rate', queue: 'warehouse', rate: null })[0]!.message).toMatch(/unlimited/);
    expect(checkControl(p, { action: 'set-queue-rate', queue: 'other', rate: 1e6 })).toEqual([]);
  });

  it('lets set-budget raise a budget up to the max, and wants its reason', () => {
    expect(checkControl(p, { action: 'set-budget', budget: 'retries', limit: 50, reason: why })).toEqual([]);
    expect(checkControl(p, { action: 'set-budget', budget: 'retries', limit: 51, reason: why })).toEqual([
      { rule: 'budgets.retries.max', message: "a retries budget of 51 is above the policy's most, 50: set 50 or less" },
    ]);
    expect(checkControl(p, { action: 'set-budget', budget: 'cost', limit: 5e6 })).toEqual([{ rule: 'reasons.required[1]', message: expect.stringMatching(/^set-budget needs a reason/) }]);
    expect(checkControl(policy({}), { action: 'set-budget', budget: 'cost', limit: 1 })[0]!.rule).toBe('budgets.cost');
    expect(checkControl(policy({}), { action: 'set-budget', budget: 'retries', limit: 1 })).toEqual([]);
  });

  it('wants reasons for the listed actions only', () => {
    expect(checkControl(p, { action: 'cancel' })[0]!.rule).toBe('reasons.required[2]');
    expect(checkControl(p, { action: 'cancel', reason: why })).toEqual([]);
    for (const action of ['pause', 'resume', 'retry', 'approve', 'rollback'] as const) expect(checkControl(p, { action })).toEqual([]);
    const everything = policy({ reasons: { required: true } });
    for (const action of ['pause', 'resume', 'retry', 'approve', 'rollback', 'cancel'] as const) expect(checkControl(everything, { action })[0]!.rule).toBe('reasons.required');
  });
});
