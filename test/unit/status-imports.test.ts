/**
 * What `backfill status` loads before it answers: its action's modules (the client, the
 * rendering) and what they import. The Temporal client is the one heavy package it needs; the
 * spec's schemas (zod), the coordinator, the worker and the warehouses' drivers stay out.
 */
import { describe, expect, it } from 'vitest';
import { reachable } from './import-graph.ts';

const STATUS = ['client/commands/status.ts', 'client/with-client.ts', 'client/backfill-client.ts', 'client/render.ts', 'host/settings.ts'];

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
