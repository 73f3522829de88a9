/**
 * DuckDB's client runs a statement with parameters in three calls to the engine's thread (split
 * the text into statements, prepare, execute), each a trip through Node's thread pool; one that
 * is prepared already takes one. A publish runs a dozen statements with parameters, mostly the
 * same texts each time, and on a busy machine every trip waits for a core: the lake keeps its
 * statements prepared, by text, on its one connection.
 *
 * DuckDB binds a prepared statement again by itself when what it reads changed (a staging table
 * made again with other columns, the catalogue attached again), so a kept statement stays right.
 */
import type { DuckDBConnection, DuckDBMaterializedResult, DuckDBPreparedStatement, DuckDBResult, DuckDBValue } from '@duckdb/node-api';
import { bindTypes } from './values.ts';

/** Texts kept prepared at most: backfill's own statements, and the spec SQL of the nodes at work. */
const KEPT = 256;

export class PreparedStatements {
  /** By text, least recently used first. */
  private readonly kept = new Map<string, DuckDBPreparedStatement>();

  constructor(private readonly c: DuckDBConnection) {}

  private async prepared(text: string): Promise<DuckDBPreparedStatement> {
    const found = this.kept.get(text);
    if (found) {
      this.kept.delete(text);
      this.kept.set(text, found);
      return found;
    }
    const prepared = await this.c.prepare(text);
    this.kept.set(text, prepared);
    if (this.kept.size > KEPT) {
      const [oldest, statement] = this.kept.entries().next().value!;
      this.kept.delete(oldest);
      statement.destroySync();
    }
    return prepared;
  }

  /**
   * Runs `text` with `values` ($1, $2, …), materialized; a text without values in one call,
   * unprepared. `once`: a text that will not come again (spec SQL over one partition's files),
   * prepared, run and let go.
   */
  async run(text: string, values: readonly DuckDBValue[], options: { once?: boolean } = {}): Promise<DuckDBMaterializedResult> {
    if (values.length === 0) return this.c.run(text);
    if (options.once) {
      const prepared = await this.c.prepare(text);
      try {
        prepared.bind([...values], bindTypes(values));
        return await prepared.run();
      } finally {
        prepared.destroySync();
      }
    }
    const prepared = await this.prepared(text);
    prepared.bind([...values], bindTypes(values));
    return prepared.run();
  }

  /** Streams `text`'s result, read chunk by chunk. */
  async stream(text: string, values: readonly DuckDBValue[]): Promise<DuckDBResult> {
    if (values.length === 0) return this.c.stream(text);
    const prepared = await this.prepared(text);
    prepared.bind([...values], bindTypes(values));
    return prepared.stream();
  }


  /** Forgets every kept statement (the connection closes). */
  clear(): void {
    for (const statement of this.kept.values()) statement.destroySync();
    this.kept.clear();
  }
}
