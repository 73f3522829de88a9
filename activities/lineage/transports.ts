/**
 * Where OpenLineage events go: an HTTP endpoint (one POST per event, as the OpenLineage API
 * takes them), a file, or the console. A transport sends or throws; deciding that a lost event
 * must not fail a backfill is the activity's job.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { RunEvent } from '../../core/openlineage.ts';
import { displayUrl, type FileTransportConfig, type HttpTransportConfig, type TransportConfig } from './config.ts';

export interface LineageTransport {
  /** For log lines: where events go (never a secret). */
  readonly name: string;
  send(event: RunEvent, signal?: AbortSignal): Promise<void>;
}

/** An HTTP answer worth trying again: the server is busy or down, not refusing the event. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class HttpLineageTransport implements LineageTransport {
  readonly name: string;

  constructor(
    private readonly config: HttpTransportConfig,
    /** The wait before attempt n+1 is backoffMs × 2^(n-1). */
    private readonly backoffMs = 300,
  ) {
    this.name = `POST ${displayUrl(config.url)}`;
  }

  async send(event: RunEvent, signal?: AbortSignal): Promise<void> {
    const json = JSON.stringify(event);
    const headers: Record<string, string> = { ...this.config.headers, 'Content-Type': 'application/json' };
    if (this.config.apiKey) headers.Authorization = `Bearer ${this.config.apiKey}`;
    const body = this.config.compression === 'gzip' ? gzipSync(json) : json;
    if (this.config.compression === 'gzip') headers['Content-Encoding'] = 'gzip';
    let problem = '';
    for (let attempt = 1; attempt <= this.config.attempts; attempt++) {
      if (attempt > 1) await sleep(this.backoffMs * 2 ** (attempt - 2), signal);
      const timeout = AbortSignal.timeout(this.config.timeoutMs);
      try {
        const response = await fetch(this.config.url, { method: 'POST', headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
        // Drain the body so that the connection is released.
        const text = await response.text();
        if (response.ok) return;
        problem = `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
        if (!retryable(response.status)) break;
      } catch (error) {
        if (signal?.aborted) throw error;
        problem = timeout.aborted ? `no answer within ${this.config.timeoutMs} ms` : `${(error as Error).message}${causeOf(error)}`;
      }
    }
    throw new Error(`${this.name} failed after ${this.config.attempts} attempt(s): ${problem}`);
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause ? ` (${cause.code ?? cause.message ?? String(cause)})` : '';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Events as JSON: with `append`, one line each in the file; without, one file each, named
 * `<path>-<event time>-<run id>-<event type>.json` (a retried emit writes the same file again).
 */
export class FileLineageTransport implements LineageTransport {
  readonly name: string;

  constructor(private readonly config: FileTransportConfig) {
    this.name = `file ${config.path}`;
  }

  async send(event: RunEvent): Promise<void> {
    await mkdir(dirname(this.config.path), { recursive: true });
    const line = `${JSON.stringify(event)}\n`;
    if (this.config.append) {
      await appendFile(this.config.path, line);
      return;
    }
    const stamp = event.eventTime.replace(/[-:]/g, '').replace('T', '-').replace('Z', '');
    await writeFile(`${this.config.path}-${stamp}-${event.run.runId}-${event.eventType}.json`, line);
  }
}

/** One JSON line per event on standard output. */
export class ConsoleLineageTransport implements LineageTransport {
  readonly name = 'console';

  constructor(private readonly write: (line: string) => void = (line) => void process.stdout.write(line)) {}

  async send(event: RunEvent): Promise<void> {
    this.write(`${JSON.stringify(event)}\n`);
  }
}

export function createTransport(config: TransportConfig): LineageTransport {
  switch (config.type) {
    case 'http':
      return new HttpLineageTransport(config);
    case 'file':
      return new FileLineageTransport(config);
    case 'console':
      return new ConsoleLineageTransport();
  }
}
