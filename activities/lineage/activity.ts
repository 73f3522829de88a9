/**
 * `emitLineage`: one OpenLineage run event for a transition of a backfill's run or of a node's
 * run in it. The workflow brings the facts it knows (times, run key, spec, range); the
 * warehouse tells the rest (names, columns, rows, check results).
 *
 * Lineage is an observer: this activity never fails. A bad input, an unreachable warehouse or
 * a lineage endpoint that is down (after the transport's bounded retries) is logged as a
 * warning and reported in the result, and the backfill goes on. The same input always makes
 * the same event (run ids are derived, times come from the workflow), so a retried emit
 * repeats the event rather than adding a new run.
 */
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { EmitLineageInputSchema, type EmitLineageResult, type LineageNode } from '../../core/lineage-input.ts';
import {
  buildRunEvent,
  checkAssertions,
  countCheckFailures,
  jobName,
  nominalWindow,
  partitionSpan,
  partitionSubset,
  type LineageOutput,
  type LineageRun,
  type RunEvent,
} from '../../core/openlineage.ts';
import type { Warehouse } from '../warehouse/types.ts';
import type { LineageSettings } from './config.ts';
import { lineageRunId } from './run-ids.ts';
import { createTransport, type LineageTransport } from './transports.ts';
import { WarehouseFacts } from './warehouse-facts.ts';
import { heartbeatingAll } from '../heartbeating.ts';

export type LineageDeps = {
  warehouse: Warehouse;
  settings: LineageSettings;
  /** The URI of this software and version (every event's `producer`). */
  producer: string;
  /** `processing_engine` of every run: this package's version. */
  engineVersion: string;
  /** Where events go instead of the settings' transport (tests). */
  transport?: LineageTransport;
};

/** This package's producer URI: its page on the npm registry, at its version. */
export function producerUri(name: string, version: string): string {
  return `https://www.npmjs.com/package/${encodeURIComponent(name).replace('%40', '@')}/v/${encodeURIComponent(version)}`;
}

/**
 * Every value, once all have settled, or the first failure: the event is not made, and no read
 * of the warehouse for it is still running (a worker may close the warehouse right after).
 */
async function allSettled<T>(work: ReadonlyArray<Promise<T>>): Promise<T[]> {
  const values: T[] = [];
  for (const result of await Promise.allSettled(work)) {
    if (result.status === 'rejected') throw result.reason;
    values.push(result.value);
  }
  return values;
}

export function createLineageActivities(deps: LineageDeps) {
  const settings = deps.settings;
  const transport: LineageTransport | undefined = settings.enabled ? (deps.transport ?? createTransport(settings.transport)) : undefined;
  const known = new WarehouseFacts(deps.warehouse);

  const build = async (raw: unknown): Promise<RunEvent> => {
    const input = EmitLineageInputSchema.parse(raw);
    const namespace = settings.enabled ? settings.namespace : '';
    const terminal = input.eventType !== 'START';
    const backfillJob = { namespace, name: jobName(input.spec.name) };
    const backfillRunId = lineageRunId(input.startedAt, input.runKey);

    /** A node's dataset as an output; `failures`: the node run's own (its checks become assertions). */
    const output = async (node: LineageNode, failures?: ReadonlyArray<{ message: string; type?: string | undefined; partitions: number }>): Promise<LineageOutput> => {
      const span = partitionSpan(node.partitions, input.range);
      const dataset: LineageOutput = { ...(await known.dataset(node.id)), ...(span ? { subset: partitionSubset(span) } : {}) };
      if (terminal) {
        const outcome = await known.runOutcome(input.backfillId, input.runKey, node.id, node.checks);
        dataset.rowCount = outcome.rowCount;
        if (failures && node.checks.length > 0) {
          // Warned checks from the ledger; checks that blocked partitions from the run's failures.
          const blocked = failures.filter((f) => f.type === undefined || f.type === 'CheckFailed');
          dataset.assertions = checkAssertions(node.checks, countCheckFailures(node.checks, blocked, outcome.warnings));
        }
      }
      return dataset;
    };

    const common = {
      eventType: input.eventType,
      eventTime: input.eventTime,
      producer: deps.producer,
      engine: { name: 'backfill', version: deps.engineVersion },
      ...(input.error !== undefined ? { error: input.error } : {}),
    };
    let run: LineageRun;
    if (input.run.kind === 'backfill') {
      const { nodes } = input.run;
      const nominal = nominalWindow(nodes.map((n) => partitionSpan(n.partitions, input.range)));
      run = {
        ...common,
        runId: backfillRunId,
        job: { ...backfillJob, kind: 'backfill', ...(input.spec.description ? { description: input.spec.description } : {}) },
        ...(nominal ? { nominal } : {}),
        inputs: [],
        outputs: await allSettled(nodes.map((n) => output(n))),
      };
    } else {
      const { node, failures = [] } = input.run;
      const nominal = nominalWindow([partitionSpan(node.partitions, input.range)]);
      run = {
        ...common,
        runId: lineageRunId(input.startedAt, input.runKey, node.id),
        job: { namespace, name: jobName(input.spec.name, node.id), kind: 'node' },
        parent: { runId: backfillRunId, job: backfillJob },
        ...(nominal ? { nominal } : {}),
        inputs: await allSettled([...new Set(node.dependsOn.map((d) => d.node))].map((id) => known.dataset(id))),
        outputs: [await output(node, failures)],
      };
    }
    return buildRunEvent(run);
  };

  return heartbeatingAll({
    async emitLineage(raw: unknown): Promise<EmitLineageResult> {
      if (!transport) return { events: 0, sent: false, transport: 'off' };
      const ctx = Context.current();
      let event: RunEvent;
      try {
        event = await build(raw);
      } catch (error) {
        const message = error instanceof z.ZodError ? `bad input: ${z.prettifyError(error)}` : error instanceof Error ? error.message : String(error);
        ctx.log.warn('lineage event not made', { error: message, transport: transport.name });
        return { events: 0, sent: false, transport: transport.name, error: message };
      }
      try {
        await transport.send(event, ctx.cancellationSignal);
        ctx.log.debug('lineage event sent', { eventType: event.eventType, job: event.job.name, runId: event.run.runId });
        return { events: 1, sent: true, transport: transport.name };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        ctx.log.warn('lineage event lost: the backfill goes on without it', { eventType: event.eventType, job: event.job.name, runId: event.run.runId, error: message });
        return { events: 1, sent: false, transport: transport.name, error: message };
      }
    },
  });
}

export type LineageActivities = ReturnType<typeof createLineageActivities>;
