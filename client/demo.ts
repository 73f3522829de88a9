/** `backfill demo`: a dev server, a worker and the example backfill, with live progress. */
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import pc from 'picocolors';
import { formatDuration } from '../core/duration.ts';
import { BackfillError } from '../core/errors.ts';
import type { ResolvedSpec } from '../core/spec.ts';
import type { Progress } from '../core/protocol.ts';
import { BackfillClient, defaultBackfillId } from './backfill-client.ts';
import { specQueues, type LocalOptions, type LocalStack } from './local.ts';
import { printable, terminalText } from './printable.ts';
import { logSettings } from '../workers/logging.ts';
import { renderFailures, renderStatus } from './render.ts';
import { endAfterStop, stopOnFailure } from './serve.ts';
import { loadSpecFile } from './spec-file.ts';
import type { Settings } from '../host/settings.ts';

export type DemoOptions = {
  spec: string;
  json: boolean | undefined;
  port: number;
  uiPort: number;
  /** From the environment: where the dev server keeps its state, and the client's defaults. */
  settings: Settings;
  /** The worker's warehouse (default: the warehouse's own) and code version. */
  warehouse?: string | undefined;
  codeVersion?: string | undefined;
  startLocal: (options: LocalOptions) => Promise<LocalStack>;
  watch: (client: BackfillClient, id: string, json: boolean | undefined) => Promise<Progress>;
};

/** One hash over every partition's checksum: equal fingerprints mean identical data. */
export function fingerprint(rows: Array<{ node: string; partition: string; checksum: string | null }>): string {
  const hash = createHash('sha256');
  for (const row of [...rows].sort((a, b) => `${a.node}/${a.partition}`.localeCompare(`${b.node}/${b.partition}`))) {
    hash.update(`${row.node}/${row.partition}=${row.checksum}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** A command that shows a dataset's first rows, for the warehouse's kind. */
function lookInside(kind: string, location: string, node: string): string {
  if (kind === 'lake') return `duckdb -c "SELECT * FROM read_parquet('${location}/${node}/*.parquet') LIMIT 5"`;
  if (kind === 'postgres') return `psql -c 'SELECT * FROM ${node} LIMIT 5'`;
  return `sqlite3 ${location} 'SELECT * FROM ${node} LIMIT 5'`;
}

/** What the demo's summary says of how fast it went. */
export type DemoPace = { partitions: number; total: number; rows: number; seconds: number; throughput: number | null };

/**
 * The summary's first line. Two rates that differ, each named: the headline's throughput counts
 * only the time partitions ran (first start to last finish); the demo's wall time also has the
 * start, the admission and the status polls in it, which for a short backfill is most of it.
 */
export function paceLine(pace: DemoPace): string {
  const ran = pace.throughput === null ? '' : `${pace.throughput.toFixed(1)}/s while partitions ran (the throughput above); `;
  const overall = pace.seconds > 0 ? `, ${(pace.partitions / pace.seconds).toFixed(1)}/s` : '';
  return `${pace.partitions}/${pace.total} partitions (${pace.rows.toLocaleString('en-US')} rows): ${ran}${formatDuration(pace.seconds * 1000)} in all${overall} with starting the backfill and watching it`;
}

const REASON = 'backfill demo: stopped';

/** What the demo stops when its worker fails, as `backfill dev` says it. */
const WHAT_STOPS = 'it and the Temporal dev server (closing its connection and warehouse)';

/** The ids the demo gives a spec's backfills: `<name>-demo-<time>`. */
export function isDemoId(specName: string, backfillId: string): boolean {
  const prefix = defaultBackfillId(`${specName}-demo`).replace(/\d{8}-\d{6}Z$/, '');
  return backfillId.startsWith(prefix) && /^\d{8}-\d{6}Z$/.test(backfillId.slice(prefix.length));
}

/** Cancels a backfill and waits (a while) until it has ended; one that ended already is left as it is. */
async function cancelAndWait(client: BackfillClient, backfillId: string): Promise<void> {
  try {
    await client.cancel(backfillId, { reason: REASON });
  } catch (error) {
    if (error instanceof BackfillError && error.code === 'not_running') return;
    throw error;
  }
  await client.wait(backfillId, 60_000).catch(() => undefined);
}

/**
 * A demo stopped without its cleanup (killed, or its machine) leaves its backfill running in the
 * dev server's state, and that backfill would hold the datasets of every later demo of the spec
 * (dataset_busy) with no server to wait for or cancel it: the demo cancels it. Backfills of
 * other ids are left alone.
 */
async function cancelEarlierDemos(client: BackfillClient, spec: ResolvedSpec, backfillId: string, log: (line: string) => void): Promise<void> {
  const writers = await client.datasetWriters(backfillId, spec.nodes.map((node) => node.id));
  for (const { backfillId: earlier } of writers.filter((w) => isDemoId(spec.name, w.backfillId))) {
    log(pc.dim(`cancelling ${earlier}, which an earlier demo of ${spec.name} left running`));
    await cancelAndWait(client, earlier);
  }
}

export async function runDemo(options: DemoOptions): Promise<Progress['state']> {
  const log = (line: string) => options.json || process.stderr.write(`${terminalText(line)}\n`);
  const { spec, transformModules } = await loadSpecFile(options.spec);
  log(pc.dim('starting the Temporal dev server and a worker ...'));
  const stack = await options.startLocal({
    home: options.settings.home,
    port: options.port,
    uiPort: options.uiPort,
    worker: true,
    // A demo is judged by no policy by design: its worker's warning would be the first thing a new user reads.
    quietWithoutPolicy: true,
    transforms: transformModules,
    // Every queue the spec's nodes use: a node on a queue nobody polls never runs.
    queues: specQueues(spec),
    // The SDK would shut the worker down on Ctrl-C, before the demo's backfill is cancelled.
    telemetry: { log: logSettings('text', options.settings.logLevel), shutdownSignals: [] },
    ...(options.settings.workflowBundle !== undefined ? { workflowBundle: options.settings.workflowBundle } : {}),
    ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
    ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
  });
  const began = Date.now();
  let running: { client: BackfillClient; backfillId: string } | undefined;
  // Stopped by a signal (Ctrl-C, a timeout's SIGTERM), the demo cancels its backfill (else it stays
  // running in the dev server's state) and then stops its worker and dev server. The demo's own
  // course waits for that and goes no further (its client must stay open for the cancel).
  let stopping: Promise<never> | undefined;
  let endWatch: () => void = () => undefined;
  const ending = new Promise<void>((done) => (endWatch = done));
  const interrupted = (signal: NodeJS.Signals) => {
    endWatch();
    const backfill = running;
    log(pc.dim(`${signal}: ${backfill ? `cancelling ${backfill.backfillId} (interrupt again to leave it running), then ` : ''}stopping the dev server and the worker ...`));
    stopping = (async () => {
      try {
        if (backfill) {
          await cancelAndWait(backfill.client, backfill.backfillId).catch((error: unknown) =>
            log(`could not cancel ${backfill.backfillId}: ${error instanceof Error ? error.message : String(error)}`),
          );
        }
        endAfterStop(await stack.stop(), logSettings('text', options.settings.logLevel));
      } catch (error) {
        log(error instanceof Error ? error.message : String(error));
      } finally {
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
    })();
  };
  const unlessStopping = async () => {
    if (stopping) await stopping;
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  // A worker that fails fatally runs no more partitions: the demo would watch a backfill that
  // never ends. It stops the worker and the dev server instead, and ends with the failure.
  // Until the demo stops its worker itself (its end, a signal): then `done` may fail as a stop does
  // (activities abandoned), which is not the worker failing.
  let workerDown = false;
  const stopFailed = () => {
    workerDown = true;
    return stack.stop();
  };
  const watched = Promise.race([stack.worker?.done ?? ending, ending]);
  const workerFailed = stopOnFailure(watched, stopFailed, WHAT_STOPS, logSettings('text', options.settings.logLevel)).then(() => new Promise<never>(() => undefined));
  try {
    return await Promise.race([course(), workerFailed]);
  } finally {
    endWatch();
    await unlessStopping();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    if (!workerDown) {
      log(pc.dim(`stopping (the dev server's state stays in ${dirname(stack.server.options.dbFile)})`));
      endAfterStop(await stack.stop(), logSettings('text', options.settings.logLevel));
    }
  }

  async function course(): Promise<Progress['state']> {
    const client = await BackfillClient.connect({ address: stack.address, ...(stack.uiUrl ? { uiUrl: stack.uiUrl } : {}), defaults: options.settings });
    try {
      const backfillId = defaultBackfillId(`${spec.name}-demo`);
      await cancelEarlierDemos(client, spec, backfillId, log);
      running = { client, backfillId };
      const started = await client.start(spec, { id: backfillId });
      log(`${pc.bold(spec.name)}: backfill ${pc.bold(started.backfillId)} started\n  web UI: ${started.uiUrl}`);
      const final = await options.watch(client, started.backfillId, options.json);
      await unlessStopping();
      const seconds = (Date.now() - began) / 1000;
      const ledger = await stack.worker!.warehouse.ledger({ backfillId: started.backfillId });
      const published = ledger.filter((r) => r.status === 'published');
      const summary = {
        backfillId: started.backfillId,
        state: final.state,
        partitions: final.done,
        total: final.total,
        seconds: Number(seconds.toFixed(1)),
        /** Over the whole `seconds` (the start and the watching too). */
        partitionsPerSecond: Number((final.done / seconds).toFixed(1)),
        /** As status says: over the time partitions ran. */
        throughput: final.throughput === null ? null : Number(final.throughput.toFixed(1)),
        rows: published.reduce((sum, r) => sum + (r.rowCount ?? 0), 0),
        fingerprint: fingerprint(published),
        warehouse: stack.worker!.warehouse.location,
        uiUrl: started.uiUrl,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      } else {
        process.stdout.write(`${terminalText(renderStatus(final))}\n`);
        process.stdout.write(
          terminalText(
            [
              '',
              paceLine({ partitions: summary.partitions, total: summary.total, rows: summary.rows, seconds, throughput: final.throughput }),
              `data fingerprint ${pc.bold(summary.fingerprint)} (the same on every run: each partition's checksum is reproducible)`,
              `warehouse: ${summary.warehouse} (${lookInside(stack.worker!.warehouse.kind, summary.warehouse, spec.nodes.at(-1)?.id ?? '')})`,
              ...renderFailures(printable(final)),
            ].join('\n'),
          ) + '\n',
        );
      }
      return final.state;
    } finally {
      await unlessStopping();
      running = undefined;
      await client.close();
    }
  }
}
