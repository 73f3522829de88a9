/** `backfill demo`: a dev server, a worker and the example backfill, with live progress. */
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import pc from 'picocolors';
import { formatDuration } from '../core/duration.ts';
import type { Progress } from '../core/protocol.ts';
import { BackfillClient, defaultBackfillId } from './backfill-client.ts';
import type { LocalOptions, LocalStack } from './local.ts';
import { printable } from './printable.ts';
import { renderFailures, renderStatus } from './render.ts';
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

export async function runDemo(options: DemoOptions): Promise<Progress['state']> {
  const log = (line: string) => options.json || process.stderr.write(`${line}\n`);
  const { spec, transformModules } = await loadSpecFile(options.spec);
  log(pc.dim('starting the Temporal dev server and a worker ...'));
  const stack = await options.startLocal({
    home: options.settings.home,
    port: options.port,
    uiPort: options.uiPort,
    worker: true,
    transforms: transformModules,
    ...(options.settings.workflowBundle !== undefined ? { workflowBundle: options.settings.workflowBundle } : {}),
    ...(options.warehouse !== undefined ? { warehouse: options.warehouse } : {}),
    ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
  });
  const began = Date.now();
  // Stopped by a signal (Ctrl-C, a timeout's SIGTERM), the demo still stops its dev server and worker.
  const interrupted = (signal: NodeJS.Signals) => {
    log(pc.dim(`${signal}: stopping the dev server and the worker ...`));
    void stack.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const client = await BackfillClient.connect({ address: stack.address, ...(stack.uiUrl ? { uiUrl: stack.uiUrl } : {}), defaults: options.settings });
    try {
      const started = await client.start(spec, { id: defaultBackfillId(`${spec.name}-demo`) });
      log(`${pc.bold(spec.name)}: backfill ${pc.bold(started.backfillId)} started\n  web UI: ${started.uiUrl}`);
      const final = await options.watch(client, started.backfillId, options.json);
      const seconds = (Date.now() - began) / 1000;
      const ledger = await stack.worker!.warehouse.ledger({ backfillId: started.backfillId });
      const published = ledger.filter((r) => r.status === 'published');
      const summary = {
        backfillId: started.backfillId,
        state: final.state,
        partitions: final.done,
        total: final.total,
        seconds: Number(seconds.toFixed(1)),
        partitionsPerSecond: Number((final.done / seconds).toFixed(1)),
        rows: published.reduce((sum, r) => sum + (r.rowCount ?? 0), 0),
        fingerprint: fingerprint(published),
        warehouse: stack.worker!.warehouse.location,
        uiUrl: started.uiUrl,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      } else {
        process.stdout.write(`${renderStatus(final)}\n`);
        process.stdout.write(
          [
            '',
            `${summary.partitions}/${summary.total} partitions (${summary.rows.toLocaleString('en-US')} rows) in ${formatDuration(seconds * 1000)}, ${summary.partitionsPerSecond}/s`,
            `data fingerprint ${pc.bold(summary.fingerprint)} (the same on every run: each partition's checksum is reproducible)`,
            `warehouse: ${summary.warehouse} (${lookInside(stack.worker!.warehouse.kind, summary.warehouse, spec.nodes.at(-1)?.id ?? '')})`,
            ...renderFailures(printable(final)),
          ].join('\n') + '\n',
        );
      }
      return final.state;
    } finally {
      await client.close();
    }
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    log(pc.dim(`stopping (the dev server's state stays in ${dirname(stack.server.options.dbFile)})`));
    await stack.stop();
  }
}
