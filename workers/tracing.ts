/**
 * OpenTelemetry tracing with the SDK's interceptors, on when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: spans go to that OTLP/HTTP endpoint. The
 * OpenTelemetry packages are imported only then; this module alone loads nothing.
 *
 * One tracer provider per process (a `backfill dev` process holds both a worker and clients).
 * Spans of the client (start, query, update), of the workflows (through the workflow
 * interceptor module in the bundle and the `exporter` sink) and of the activities share one
 * trace per backfill, carried in Temporal's headers.
 */
import { createRequire } from 'node:module';
import type { ClientInterceptors } from '@temporalio/client';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';

export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** The workflow interceptors that must be bundled with the workflows for workflow spans. */
export const WORKFLOW_TRACING_MODULE = createRequire(import.meta.url).resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

export type Tracing = {
  client: ClientInterceptors;
  activity: ActivityInterceptorsFactory;
  /** The sink the workflow interceptors export their spans through. */
  sinks: InjectedSinks<OpenTelemetrySinks>;
  /**
   * Sends the spans ended so far (before a command exits, when a worker stops). Traces are a
   * side channel: a collector that is down or slow is warned about, never the command's failure.
   */
  flush(): Promise<void>;
};

/** Where a failed export is told (default: a line on stderr; a worker passes its logger's warn). */
export type TracingWarn = (message: string) => void;

const warnOnStderr: TracingWarn = (message) => void process.stderr.write(`warning: ${message}\n`);

let tracing: Promise<Tracing> | undefined;

/** The process's tracing (started on first use); `serviceName` unless OTEL_SERVICE_NAME says otherwise. */
export function startTracing(serviceName: string, warn: TracingWarn = warnOnStderr): Promise<Tracing> {
  tracing ??= load(process.env.OTEL_SERVICE_NAME || serviceName, warn);
  return tracing;
}

/** The OTLP endpoint spans go to, as the exporter reads it from the environment. */
export function tracesEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces) return traces;
  return `${(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').replace(/\/$/, '')}/v1/traces`;
}

export function exportFailure(error: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const reason = error instanceof Error ? error.message : String(error);
  return (
    `traces not sent to ${displayEndpoint(tracesEndpoint(env))} (${reason}): the backfill is unaffected; ` +
    'start the OTLP collector there, or fix OTEL_EXPORTER_OTLP_ENDPOINT (unset it to send no traces)'
  );
}

/** An endpoint without the credentials a URL may carry. */
function displayEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return endpoint;
  }
}

async function load(serviceName: string, warn: TracingWarn): Promise<Tracing> {
  const [{ Resource }, { BatchSpanProcessor }, { NodeTracerProvider }, { OTLPTraceExporter }, otel] = await Promise.all([
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@temporalio/interceptors-opentelemetry'),
  ]);
  const resource = new Resource({ 'service.name': serviceName });
  // The exporter reads the endpoint (appending /v1/traces), headers and timeout from OTEL_EXPORTER_OTLP_*.
  const processor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // Global, for the interceptors' tracers and the W3C propagation of trace context in headers.
  provider.register();
  return {
    client: { workflow: [new otel.OpenTelemetryWorkflowClientInterceptor()] },
    activity: (ctx) => ({
      inbound: new otel.OpenTelemetryActivityInboundInterceptor(ctx),
      outbound: new otel.OpenTelemetryActivityOutboundInterceptor(ctx),
    }),
    sinks: { exporter: otel.makeWorkflowExporter(processor, resource) },
    flush: () => provider.forceFlush().catch((error: unknown) => warn(exportFailure(error))),
  };
}
