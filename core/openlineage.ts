/**
 * OpenLineage run events, built from plain facts: no clock, no I/O. The caller brings the
 * times, the run ids, the dataset names and what the warehouse knows of each dataset; this
 * module only shapes them as the OpenLineage spec (2-0-2) and its facets define them.
 *
 * One backfill is a run of the job `<spec name>`; each node's part of it is a run of the job
 * `<spec name>.<node>` whose `parent` facet names the backfill's run. Datasets are the
 * nodes' published views, named after the warehouse (see `postgresNamespace`, `sqliteNamespace`).
 */
import { NodePartitions } from './partitions.ts';
import type { PartitionRange, ResolvedPartitions } from './spec.ts';
import type { CheckInput } from './spec.ts';

/** The RunEvent schema this module writes (the core spec's version). */
export const RUN_EVENT_SCHEMA_URL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';

const FACETS = 'https://openlineage.io/spec/facets';

/** Each facet this module writes, by its key in an event, with the schema (and version) it follows. */
export const FACET_SCHEMA_URLS = {
  parent: `${FACETS}/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet`,
  nominalTime: `${FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet`,
  processing_engine: `${FACETS}/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet`,
  errorMessage: `${FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet`,
  jobType: `${FACETS}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet`,
  documentation: `${FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet`,
  schema: `${FACETS}/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet`,
  dataSource: `${FACETS}/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet`,
  outputStatistics: `${FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet`,
  dataQualityAssertions: `${FACETS}/1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet`,
  inputSubset: `${FACETS}/1-0-0/BaseSubsetDatasetFacet.json#/$defs/InputSubsetInputDatasetFacet`,
  outputSubset: `${FACETS}/1-0-0/BaseSubsetDatasetFacet.json#/$defs/OutputSubsetOutputDatasetFacet`,
} as const;

/** The job namespace when OPENLINEAGE_NAMESPACE names none. */
export const DEFAULT_JOB_NAMESPACE = 'backfill';

/** `integration` of the jobType facet: what emitted the job. */
export const INTEGRATION = 'BACKFILL';

/**
 * START, then one of COMPLETE, FAIL or ABORT (the spec's terminal states). A backfill that
 * was cancelled is aborted; one that failed, or completed with failed partitions, failed.
 */
export type LineageEventType = 'START' | 'COMPLETE' | 'FAIL' | 'ABORT';
export const LINEAGE_EVENT_TYPES = ['START', 'COMPLETE', 'FAIL', 'ABORT'] as const satisfies readonly LineageEventType[];

/** The terminal event type of a backfill (or a node's part of it) in this end state. */
export function terminalEventType(state: 'completed' | 'completed_with_failures' | 'failed' | 'cancelled'): Exclude<LineageEventType, 'START'> {
  if (state === 'completed') return 'COMPLETE';
  if (state === 'cancelled') return 'ABORT';
  return 'FAIL';
}

// ----- the JSON shapes (what the spec's schemas describe) -----

type Facet = { _producer: string; _schemaURL: string };
type Facets = Record<string, Facet & Record<string, unknown>>;

export type SchemaField = { name: string; type?: string };

export type CompareCondition = {
  type: 'compare';
  left: { type: 'field'; field: string } | { type: 'literal'; value: string };
  right: { type: 'field'; field: string } | { type: 'literal'; value: string };
  comparison: 'EQUAL' | 'GREATER_THAN' | 'GREATER_EQUAL_THAN' | 'LESS_THAN' | 'LESS_EQUAL_THAN';
};
export type SubsetCondition =
  | CompareCondition
  | { type: 'binary'; operator: 'AND' | 'OR'; left: SubsetCondition; right: SubsetCondition }
  | { type: 'partition'; partitions: Array<{ identifier?: string; dimensions: Record<string, string> }> };

export type Assertion = {
  assertion: string;
  success: boolean;
  column?: string;
  severity?: string;
  name?: string;
  description?: string;
  expected?: string;
  actual?: string;
  content?: string;
  contentType?: string;
};

export type RunEvent = {
  eventType: LineageEventType;
  eventTime: string;
  producer: string;
  schemaURL: string;
  run: { runId: string; facets: Facets };
  job: { namespace: string; name: string; facets: Facets };
  inputs: Array<{ namespace: string; name: string; facets: Facets; inputFacets: Facets }>;
  outputs: Array<{ namespace: string; name: string; facets: Facets; outputFacets: Facets }>;
};

// ----- what a caller knows -----

/** A dataset's identity (OpenLineage naming: the namespace is the warehouse, the name the view in it). */
export type DatasetName = { namespace: string; name: string };

export type LineageDataset = DatasetName & {
  /** Columns as the warehouse knows them; absent when the dataset does not exist yet. */
  fields?: SchemaField[];
  /** The partitions of it that the run reads or writes. */
  subset?: SubsetCondition;
};

export type LineageOutput = LineageDataset & {
  /** Rows the run published into the dataset (every partition's version it published). */
  rowCount?: number;
  /** The dataset's checks and whether every partition the run published passed each. */
  assertions?: Assertion[];
};

export type LineageRun = {
  eventType: LineageEventType;
  /** When the transition happened (ms since the epoch). */
  eventTime: number;
  /** URI of the software that made the event (`_producer` of every facet). */
  producer: string;
  runId: string;
  job: { namespace: string; name: string; kind: 'backfill' | 'node'; description?: string };
  /** The backfill's run, for a node's run. */
  parent?: { runId: string; job: { namespace: string; name: string } };
  /** The UTC window the run covers [start, end), when its partitions are time periods. */
  nominal?: { start: number; end: number };
  engine: { name: string; version: string };
  /** Why the run failed or was aborted (FAIL, ABORT). */
  error?: string;
  inputs: LineageDataset[];
  outputs: LineageOutput[];
};

// ----- building -----

export function buildRunEvent(run: LineageRun): RunEvent {
  const facet = (key: keyof typeof FACET_SCHEMA_URLS, body: Record<string, unknown>) => ({ _producer: run.producer, _schemaURL: FACET_SCHEMA_URLS[key], ...body });
  const runFacets: Facets = {
    processing_engine: facet('processing_engine', { name: run.engine.name, version: run.engine.version }),
  };
  if (run.parent) {
    const parent = { run: { runId: run.parent.runId }, job: { namespace: run.parent.job.namespace, name: run.parent.job.name } };
    // The backfill is the root of every run in it: consumers that group by root need no second hop.
    runFacets.parent = facet('parent', { ...parent, root: parent });
  }
  if (run.nominal) runFacets.nominalTime = facet('nominalTime', { nominalStartTime: isoTime(run.nominal.start), nominalEndTime: isoTime(run.nominal.end) });
  if (run.error !== undefined && (run.eventType === 'FAIL' || run.eventType === 'ABORT')) {
    runFacets.errorMessage = facet('errorMessage', { message: run.error, programmingLanguage: 'TypeScript' });
  }
  const jobFacets: Facets = {
    jobType: facet('jobType', { processingType: 'BATCH', integration: INTEGRATION, jobType: run.job.kind === 'backfill' ? 'DAG' : 'TASK' }),
  };
  if (run.job.description) jobFacets.documentation = facet('documentation', { description: run.job.description });

  const datasetFacets = (dataset: LineageDataset) => {
    const facets: Facets = { dataSource: facet('dataSource', { name: dataset.namespace, uri: dataset.namespace }) };
    if (dataset.fields) facets.schema = facet('schema', { fields: dataset.fields.map((f) => (f.type ? { name: f.name, type: f.type } : { name: f.name })) });
    return facets;
  };
  return {
    eventType: run.eventType,
    eventTime: isoTime(run.eventTime),
    producer: run.producer,
    schemaURL: RUN_EVENT_SCHEMA_URL,
    run: { runId: run.runId, facets: runFacets },
    job: { namespace: run.job.namespace, name: run.job.name, facets: jobFacets },
    inputs: run.inputs.map((dataset) => {
      const inputFacets: Facets = {};
      if (dataset.subset) inputFacets.subset = facet('inputSubset', { inputCondition: dataset.subset });
      return { namespace: dataset.namespace, name: dataset.name, facets: datasetFacets(dataset), inputFacets };
    }),
    outputs: run.outputs.map((dataset) => {
      const outputFacets: Facets = {};
      if (dataset.subset) outputFacets.subset = facet('outputSubset', { outputCondition: dataset.subset });
      if (dataset.rowCount !== undefined) outputFacets.outputStatistics = facet('outputStatistics', { rowCount: dataset.rowCount });
      // The spec types this facet as an input facet (a check reads a dataset); here the checks run
      // inside the run that writes the dataset, on the versions it writes, so they go with the output.
      if (dataset.assertions) outputFacets.dataQualityAssertions = facet('dataQualityAssertions', { assertions: dataset.assertions });
      return { namespace: dataset.namespace, name: dataset.name, facets: datasetFacets(dataset), outputFacets };
    }),
  };
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

// ----- names -----

/** The job of a backfill of `spec`, or of one node's part of it. */
export function jobName(spec: string, node?: string): string {
  return node === undefined ? spec : `${spec}.${node}`;
}

/**
 * OpenLineage's PostgreSQL namespace, `postgres://{host}:{port}`, from a connection URL (any
 * credentials in it are dropped). The dataset name is `{database}.{schema}.{table}`.
 */
export function postgresNamespace(url: string): string {
  const parsed = new URL(url);
  const host = parsed.hostname || 'localhost';
  return `postgres://${host}:${parsed.port || '5432'}`;
}

/**
 * The namespace of a SQLite file: `sqlite://{host}{absolute path}`, the file being the
 * database (a file path means nothing without the machine it is on). The dataset name is
 * `main.{table}`.
 */
export function sqliteNamespace(host: string, absolutePath: string): string {
  const path = absolutePath.startsWith('/') ? absolutePath : `/${absolutePath}`;
  return `sqlite://${host}${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** A column as a schema facet lists it: its type as the engine declares it, upper-cased (none: no type). */
export function schemaField(name: string, declared: string | null | undefined): SchemaField {
  return declared ? { name, type: declared.toUpperCase() } : { name };
}

/**
 * The namespace of a warehouse that does not name its datasets itself (an adapter without
 * `lineageDataset`): its location as a URI, `{scheme}://{host}{path}`, without the credentials,
 * query or fragment a URL may hold; or `{kind}:{location}` for a location that is no URL. The
 * dataset name is then the node's.
 */
export function locationNamespace(kind: string, location: string): string {
  const url = URL.canParse(location) ? new URL(location) : undefined;
  // A drive letter (C:\\data) parses as a one-letter scheme: it is a path.
  if (!url || url.protocol.length <= 2) return `${kind}:${location}`;
  return `${url.protocol}//${url.host}${url.pathname}`;
}

// ----- partitions -----

/** The field a subset condition compares: the partition key (`2024-03-01`, `2024-W09`, a static key). */
export const PARTITION_DIMENSION = 'partition';

/** Above this many static keys, a subset names the first and last key instead of every key. */
export const MAX_LISTED_KEYS = 1000;

/** What a node's run covers: its partitions within the backfill's range. */
export type PartitionSpan = { count: number; first: string; last: string; kind: 'time' | 'static'; keys?: string[]; window?: { start: number; end: number } };

export function partitionSpan(partitions: ResolvedPartitions, range: PartitionRange): PartitionSpan | undefined {
  const of = NodePartitions.of(partitions, range);
  if (of.size === 0) return undefined;
  const first = of.key(0);
  const last = of.key(of.size - 1);
  if (partitions.kind === 'static') return { count: of.size, first, last, kind: 'static', ...(of.size <= MAX_LISTED_KEYS ? { keys: of.keys() } : {}) };
  return { count: of.size, first, last, kind: 'time', window: { start: of.window(0)!.start, end: of.window(of.size - 1)!.end } };
}

/**
 * A subset condition for the partitions of a span: every key when they are a short static
 * list, else `first <= partition <= last` (time keys sort in time order).
 */
export function partitionSubset(span: PartitionSpan): SubsetCondition {
  if (span.keys) return { type: 'partition', partitions: span.keys.map((key) => ({ identifier: key, dimensions: { [PARTITION_DIMENSION]: key } })) };
  const field = { type: 'field', field: PARTITION_DIMENSION } as const;
  if (span.first === span.last) return { type: 'compare', left: field, comparison: 'EQUAL', right: { type: 'literal', value: span.first } };
  return {
    type: 'binary',
    operator: 'AND',
    left: { type: 'compare', left: field, comparison: 'GREATER_EQUAL_THAN', right: { type: 'literal', value: span.first } },
    right: { type: 'compare', left: field, comparison: 'LESS_EQUAL_THAN', right: { type: 'literal', value: span.last } },
  };
}

/** The smallest window that holds every span's window (none when no span is in time). */
export function nominalWindow(spans: ReadonlyArray<PartitionSpan | undefined>): { start: number; end: number } | undefined {
  let window: { start: number; end: number } | undefined;
  for (const span of spans) {
    if (!span?.window) continue;
    window = window ? { start: Math.min(window.start, span.window.start), end: Math.max(window.end, span.window.end) } : { ...span.window };
  }
  return window;
}

// ----- checks -----

/** A check's name in the messages it fails with (`<label>: ...`), as `evaluateChecks` writes them. */
export function checkLabel(check: CheckInput): string {
  return check.name ?? check.type;
}

/** Failing partitions per check label. */
export type CheckFailures = ReadonlyMap<string, number>;

/**
 * Adds up which checks failed, from failure messages and how many partitions each stands for:
 * a message (`checks failed: <label>: ...; <label>: ...`, or a warning `<label>: ...`) counts
 * for every check whose label starts one of its parts.
 */
export function countCheckFailures(checks: readonly CheckInput[], messages: Iterable<{ message: string; partitions: number }>, into = new Map<string, number>()): Map<string, number> {
  const labels = [...new Set(checks.map(checkLabel))];
  for (const { message, partitions } of messages) {
    const parts = message.replace(/^checks failed: /, '').split('; ');
    for (const label of labels) {
      if (parts.some((part) => part.startsWith(`${label}: `))) into.set(label, (into.get(label) ?? 0) + partitions);
    }
  }
  return into;
}

/** The node's checks as data-quality assertions: one per check, failed when any partition the run wrote failed it. */
export function checkAssertions(checks: readonly CheckInput[], failures: CheckFailures): Assertion[] {
  return checks.map((check) => {
    const label = checkLabel(check);
    const failed = failures.get(label) ?? 0;
    const assertion: Assertion = {
      assertion: check.type === 'sql' ? 'custom_sql' : check.type,
      success: failed === 0,
      name: label,
      severity: check.severity ?? 'error',
      description: describeCheck(check),
    };
    if (failed > 0) assertion.actual = `failed on ${failed} partition${failed === 1 ? '' : 's'}`;
    if ((check.type === 'not_null' || check.type === 'unique') && check.columns.length === 1) assertion.column = check.columns[0]!;
    if (check.type === 'row_count') {
      const bounds = [check.min !== undefined ? `>= ${check.min}` : '', check.max !== undefined ? `<= ${check.max}` : ''].filter(Boolean);
      if (bounds.length > 0) assertion.expected = bounds.join(' and ');
    }
    if (check.type === 'sql') Object.assign(assertion, { content: check.sql, contentType: 'sql' });
    if (check.type === 'drift') assertion.expected = `within ±${check.maxChangePercent}%`;
    return assertion;
  });
}

function describeCheck(check: CheckInput): string {
  switch (check.type) {
    case 'row_count':
      return 'rows per partition within bounds';
    case 'not_null':
      return `${check.columns.join(', ')} never NULL`;
    case 'unique':
      return `(${check.columns.join(', ')}) unique within a partition`;
    case 'sql':
      return 'no rows returned by the check query';
    case 'drift': {
      const metric = check.metric === 'row_count' ? 'row count' : `sum(${check.metric.sum})`;
      return `${metric} changes by at most ${check.maxChangePercent}% from the published version`;
    }
  }
}
