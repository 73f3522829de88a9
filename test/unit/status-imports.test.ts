/**
 * What `backfill status` loads before it answers: its action's modules (the client, the
 * rendering) and what they import. For a running backfill on plain gRPC it answers through
 * client/light-status.ts, which loads none of the Temporal SDK's client: not @temporalio/client,
 * not the whole API's descriptor (@temporalio/proto). Otherwise the Temporal client is the one
 * heavy package it needs. The spec's schemas (zod), the coordinator, the worker and the
 * warehouses' drivers stay out of both.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from './build-sources.ts';
import { reachable } from './import-graph.ts';

const STATUS = ['client/commands/status.ts', 'client/with-client.ts', 'client/backfill-client.ts', 'client/render.ts', 'host/settings.ts'];
/** The light path: the command's module and what its action imports before it asks the SDK's client. */
const LIGHT = ['client/commands/status.ts', 'client/light-status.ts', 'client/connection.ts', 'workers/tracing.ts', 'client/render.ts', 'host/settings.ts'];
const SDK_CLIENT = /^@temporalio\/(client|proto|workflow|worker)$/;

describe('backfill status', () => {
  const { modules, packages } = reachable(STATUS);

  it('loads no package it does not use: no zod, worker, telemetry, YAML, charts, warehouse driver or progress bars (only --watch draws them)', () => {
    const heavy = /^(zod$|@temporalio\/worker|@opentelemetry\/|yaml$|vega|pg$|better-sqlite3$|esbuild$|tsx$|cli-progress$)/;
    expect([...packages].filter(([name]) => heavy.test(name)).map(([name, by]) => `${name} (imported by ${by})`)).toEqual([]);
  });

  it('loads neither the coordinator nor the spec schemas (resume and start import them when they run)', () => {
    expect([...modules].filter((m) => ['core/coordinator.ts', 'core/spec.ts', 'core/limits.ts', 'core/spec-changes.ts'].includes(m))).toEqual([]);
  });
});

describe('backfill status of a running backfill (the light path)', () => {
  const { modules, packages } = reachable(LIGHT);

  it('imports no module of the Temporal SDK client or workflows: @temporalio/client, proto, workflow, worker, nor workflows/', () => {
    expect([...packages].filter(([name]) => SDK_CLIENT.test(name)).map(([name, by]) => `${name} (imported by ${by})`)).toEqual([]);
    expect([...modules].filter((m) => m.startsWith('workflows/') || m === 'client/backfill-client.ts')).toEqual([]);
  });

  it('loads none of them when it runs either (what Node has loaded, after importing its modules)', () => {
    const probe = join(tmpdir(), `status-imports-${process.pid}.mjs`);
    writeFileSync(
      probe,
      [
        "import { createRequire } from 'node:module';",
        ...LIGHT.map((m) => `await import(${JSON.stringify(pathToFileURL(join(ROOT, m)).href)});`),
        'const names = Object.keys(createRequire(import.meta.url).cache).map((k) => k.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)/)?.[1]);',
        'process.stdout.write(JSON.stringify([...new Set(names.filter(Boolean))]));',
      ].join('\n'),
    );
    let loaded: string[];
    try {
      loaded = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', probe], { cwd: ROOT, encoding: 'utf8' })) as string[];
    } finally {
      rmSync(probe, { force: true });
    }
    // The light path's own transport is there: the check would see the SDK's packages if they were.
    expect(loaded).toContain('@grpc/grpc-js');
    expect(loaded.filter((name) => SDK_CLIENT.test(name))).toEqual([]);
  });
});
