/**
 * The lineage transports against real receivers: an HTTP server on the loopback (node:http),
 * files in a temporary folder, a captured console.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildRunEvent, type RunEvent } from '../../core/openlineage.ts';
import type { HttpTransportConfig } from '../../activities/lineage/config.ts';
import { ConsoleLineageTransport, FileLineageTransport, HttpLineageTransport } from '../../activities/lineage/transports.ts';

const event = (eventType: RunEvent['eventType'] = 'START', runId = '01900000-0000-7000-8000-0000000000aa'): RunEvent =>
  buildRunEvent({
    eventType,
    eventTime: Date.parse('2024-06-01T12:00:00Z'),
    producer: 'https://www.npmjs.com/package/backfill/v/1.0.0',
    runId,
    job: { namespace: 'backfill', name: 'shop', kind: 'backfill' },
    engine: { name: 'backfill', version: '1.0.0' },
    inputs: [],
    outputs: [{ namespace: 'sqlite://h/w.db', name: 'main.orders', rowCount: 3 }],
  });

type Received = { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer };

/** An HTTP server on 127.0.0.1 that records every request and answers with the next status of `statuses` (then 200). */
class Receiver {
  readonly requests: Received[] = [];
  private server: Server | undefined;
  constructor(private readonly statuses: number[] = []) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        const status = this.statuses.shift() ?? 200;
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(status < 300 ? '' : '{"error":"busy"}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

/** The error a send failed with (a send that succeeds fails the test). */
const rejection = (sending: Promise<void>): Promise<Error> =>
  sending.then(
    () => {
      throw new Error('the event was sent');
    },
    (error: unknown) => error as Error,
  );

const http = (url: string, over: Partial<HttpTransportConfig> = {}): HttpTransportConfig => ({ type: 'http', url, timeoutMs: 2000, headers: {}, attempts: 3, ...over });

describe('HttpLineageTransport', () => {
  let receiver: Receiver;
  afterEach(async () => receiver.stop());

  it('POSTs the event as JSON to the endpoint, with the API key as a Bearer token and the custom headers', async () => {
    receiver = new Receiver();
    const base = await receiver.start();
    const sent = event();
    await new HttpLineageTransport(http(`${base}/api/v1/lineage`, { apiKey: 'key-42', headers: { 'X-Team': 'data' } })).send(sent);
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request!.method).toBe('POST');
    expect(request!.url).toBe('/api/v1/lineage');
    expect(request!.headers.authorization).toBe('Bearer key-42');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['x-team']).toBe('data');
    expect(JSON.parse(request!.body.toString('utf8'))).toEqual(sent);
  });

  it('sends no Authorization header without an API key, and gzips the body when asked', async () => {
    receiver = new Receiver();
    const base = await receiver.start();
    const sent = event('COMPLETE');
    await new HttpLineageTransport(http(`${base}/lineage`, { compression: 'gzip' })).send(sent);
    const [request] = receiver.requests;
    expect(request!.headers.authorization).toBeUndefined();
    expect(request!.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(request!.body).toString('utf8'))).toEqual(sent);
  });

  it('tries again while the server is busy or down (5xx, 429), then succeeds with the same body', async () => {
    receiver = new Receiver([503, 429]);
    const base = await receiver.start();
    await new HttpLineageTransport(http(base, { attempts: 3 }), 5).send(event());
    expect(receiver.requests).toHaveLength(3);
    expect(new Set(receiver.requests.map((r) => r.body.toString('utf8'))).size).toBe(1);
  });

  it('gives up after its attempts, saying what the server answered', async () => {
    receiver = new Receiver([500, 502, 504, 500]);
    const base = await receiver.start();
    const error = await rejection(new HttpLineageTransport(http(base, { attempts: 3 }), 5).send(event()));
    expect(receiver.requests).toHaveLength(3);
    expect(error.message).toBe(`POST ${base}/ failed after 3 attempt(s): HTTP 504: {"error":"busy"}`);
  });

  it('names the endpoint in its messages without the query string, which may hold a token', async () => {
    receiver = new Receiver([500]);
    const base = await receiver.start();
    const error = await rejection(new HttpLineageTransport(http(`${base}/lineage?token=s3cret`, { attempts: 1 }), 5).send(event()));
    expect(receiver.requests[0]!.url).toBe('/lineage?token=s3cret');
    expect(error.message).toBe(`POST ${base}/lineage?… failed after 1 attempt(s): HTTP 500: {"error":"busy"}`);
  });

  it('does not repeat an event the server refuses (4xx)', async () => {
    receiver = new Receiver([400]);
    const base = await receiver.start();
    const error = await rejection(new HttpLineageTransport(http(base), 5).send(event()));
    expect(receiver.requests).toHaveLength(1);
    expect(error.message).toMatch(/HTTP 400/);
  });

  it('gives up on a server that is not there', async () => {
    receiver = new Receiver();
    const base = await receiver.start();
    await receiver.stop();
    const error = await rejection(new HttpLineageTransport(http(base, { attempts: 2 }), 5).send(event()));
    expect(error.message).toMatch(/failed after 2 attempt\(s\): fetch failed \(ECONNREFUSED\)/);
  });

  it('stops waiting for a server that does not answer', async () => {
    const silent = createServer(() => undefined); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    receiver = new Receiver();
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const error = await rejection(new HttpLineageTransport(http(url, { attempts: 1, timeoutMs: 100 })).send(event()));
      expect(error.message).toMatch(/no answer within 100 ms/);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('stops at once when the activity is cancelled', async () => {
    receiver = new Receiver([503, 503, 503]);
    const base = await receiver.start();
    const controller = new AbortController();
    const sending = new HttpLineageTransport(http(base, { attempts: 3 }), 60_000).send(event(), controller.signal);
    await expect.poll(() => receiver.requests.length).toBe(1);
    controller.abort(new Error('cancelled'));
    await expect(sending).rejects.toThrow('cancelled');
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('FileLineageTransport', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-ol-file-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON line per event', async () => {
    const path = join(dir, 'nested', 'events.jsonl');
    const transport = new FileLineageTransport({ type: 'file', path, append: true });
    await transport.send(event('START'));
    await transport.send(event('COMPLETE'));
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as RunEvent).eventType)).toEqual(['START', 'COMPLETE']);
  });

  it('without append, writes a file per event, named so that a repeated event writes the same file', async () => {
    const path = join(dir, 'ol');
    const transport = new FileLineageTransport({ type: 'file', path, append: false });
    await transport.send(event('START'));
    await transport.send(event('START'));
    await transport.send(event('COMPLETE'));
    expect(readdirSync(dir).sort()).toEqual([
      'ol-20240601-120000.000-01900000-0000-7000-8000-0000000000aa-COMPLETE.json',
      'ol-20240601-120000.000-01900000-0000-7000-8000-0000000000aa-START.json',
    ]);
    expect(JSON.parse(readFileSync(join(dir, readdirSync(dir).sort()[1]!), 'utf8'))).toEqual(event('START'));
  });
});

describe('ConsoleLineageTransport', () => {
  it('writes one JSON line per event', async () => {
    const lines: string[] = [];
    await new ConsoleLineageTransport((line) => lines.push(line)).send(event());
    expect(lines).toEqual([`${JSON.stringify(event())}\n`]);
  });
});
