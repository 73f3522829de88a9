/**
 * Where partitions are written and the ledger lives. Each dataset (node) is stored with
 * every version of every partition; a view named after the node shows the published
 * version of each partition, so downstream SQL reads `FROM <node>` and sees only
 * published data. Publishing a partition (data, checks, pointer and ledger row) is one
 * transaction: a partition is never half-published.
 */
import type { PartitionInput } from '../../core/protocol.ts';
import type { Check } from '../../core/spec.ts';

export type SqlValue = string | number | bigint | boolean | null;
export type Row = Record<string, unknown>;
export type Bindings = Record<string, SqlValue>;

/** The rows of a new partition version: rows a transform produced and SELECTs run in the warehouse. */
export type PartitionData = {
  rows: Row[];
  selects: Array<{ sql: string; bindings: Bindings }>;
};

export type InputVersions = {
  node: string;
  from: string;
  to: string;
  partitions: number;
  /** Published version of each upstream partition read (omitted above a size, see `digest`). */
  versions?: Record<string, number>;
  /** A hash of every (partition, version) pair read. */
  digest: string;
};

export type PartitionWrite = {
  node: string;
  partition: string;
  backfillId: string;
  runKey: string;
  workflowId: string;
  data: PartitionData;
  checks: Check[];
  transform: string;
  params: Record<string, unknown>;
  codeVersion: string;
  inputs: PartitionInput[];
  attempt: number;
  startedAt: number;
};

export type Published = {
  version: number;
  previousVersion: number | null;
  rowCount: number;
  checksum: string;
  schemaHash: string;
};

export type LedgerRow = {
  node: string;
  partition: string;
  version: number;
  status: 'published' | 'failed_check';
  backfillId: string;
  runKey: string;
  workflowId: string;
  rowCount: number | null;
  checksum: string | null;
  schemaHash: string | null;
  transform: string;
  params: Record<string, unknown>;
  codeVersion: string;
  inputs: InputVersions[];
  attempt: number;
  executions: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  previousVersion: number | null;
  error: string | null;
  current: boolean;
};

export interface Warehouse {
  readonly kind: 'sqlite' | 'postgres';
  readonly location: string;
  /**
   * Writes `data` as this run's version of the partition (the same version on every retry:
   * idempotent), runs the checks, then publishes it and records its ledger row, atomically.
   * Throws `CheckFailedError` when a check fails (nothing is published then).
   */
  publish(write: PartitionWrite): Promise<Published>;
  /** Runs a read-only query (transforms read upstream data with it). */
  query(sql: string, bindings?: Bindings): Promise<Row[]>;
  /** Ledger rows, newest version first, filtered by backfill, node and partition. */
  ledger(filter: { backfillId?: string; node?: string; partition?: string }): Promise<LedgerRow[]>;
  close(): Promise<void>;
}

export class CheckFailedError extends Error {
  override readonly name = 'CheckFailedError';
}

/** SQL that cannot succeed as written (syntax, unknown table or column, missing parameter). */
export class SqlError extends Error {
  override readonly name = 'SqlError';
}
