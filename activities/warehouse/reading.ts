/**
 * A warehouse opened for reading only (`openWarehouse(location, { readOnly: true })`, what
 * `lineage`, `diff`, `report`, `rollback --dry-run`, `--only-changed` and `plan --estimate` use).
 * Opening one for the workers sets it up: it creates backfill's schema, tables and function,
 * and adds the columns of newer releases. A reader must do none of that: its role may only
 * SELECT (an auditor's), its file may be read-only or another user's, and a reader pointed at
 * the wrong database must not leave a ledger there. So it looks at what is there instead, and
 * says what is missing.
 */
import { BackfillError } from '../../core/errors.ts';
import { TABLES, type InternalTable } from './ledger.ts';

/** No backfill ledger where a reader looked: nothing there was written by backfill's workers. */
export class NoLedgerError extends BackfillError {
  constructor(location: string) {
    super('invalid_argument', nothingWritten(`no backfill ledger in ${location}`, 'its readers (lineage, diff, report, rollback --dry-run, --only-changed) read', undefined, ' (and backfill_schema in a PostgreSQL URL)'), 'warehouse');
  }
}

/** What a reader that found nothing says: `what` it did not find, who reads (`reader`, with its verb), and where to look instead. */
export function nothingWritten(what: string, reader: string, hint?: string, alsoCheck = ''): string {
  return `${what}: ${reader} the ledger the workers wrote, and nothing is there (none was created). Check --warehouse or BACKFILL_WAREHOUSE${alsoCheck}: give the workers' warehouse${hint ? `; ${hint}` : ''}`;
}

/** What a reader finds of backfill's tables: each table's columns ([] when the table is not there). */
export type FoundTables = ReadonlyMap<InternalTable, readonly string[]>;

/**
 * What keeps a reader from reading the ledger as it is: `absent` when there is no ledger at all,
 * `older` with the tables and columns of newer releases it lacks (setup, which only the workers
 * run, would add them), or null when every table and column is there.
 */
export function ledgerLayout(found: FoundTables): { absent: true } | { older: string[] } | null {
  if ((found.get('ledger') ?? []).length === 0) return { absent: true };
  const missing: string[] = [];
  for (const table of TABLES) {
    const have = new Set(found.get(table.name) ?? []);
    if (have.size === 0 && table.workersOnly) continue;
    if (have.size === 0) {
      missing.push(`table ${table.name}`);
      continue;
    }
    for (const column of [...table.columns, ...(table.additions ?? [])]) if (!have.has(column.name)) missing.push(`${table.name}.${column.name}`);
  }
  return missing.length > 0 ? { older: missing } : null;
}

/** The error for a ledger a reader cannot read as it is (`ledgerLayout` not null). */
export function unreadableLedger(location: string, layout: { absent: true } | { older: string[] }): BackfillError {
  if ('absent' in layout) return new NoLedgerError(location);
  return new BackfillError(
    'failed',
    `the backfill ledger in ${location} is of an older layout (it lacks ${layout.older.join(', ')}), which a reader does not change: ` +
      'start a worker of this release on this warehouse once (it adds what is missing), then read again',
    'warehouse',
  );
}

/** What a write to a warehouse opened for reading throws. */
export function readOnlyWarehouse(location: string): Error {
  return new Error(`the warehouse ${location} was opened for reading only (readOnly: true), and this call writes: open it without readOnly to write`);
}
