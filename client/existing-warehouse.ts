/**
 * The warehouse a command only reads (`lineage`, `diff`, `report`, `--only-changed`). Opening a
 * SQLite file (or a lake) that is not there creates an empty one, which then answers "no
 * version", "never published" or "nothing staged" for a mistyped --warehouse; so these readers
 * open only a warehouse that exists, and otherwise say where they looked and what to check. They
 * open it for reading only, so that they set nothing up there either.
 */
import { join } from 'node:path';
import { BackfillError } from '../core/errors.ts';
import { nothingWritten } from '../activities/warehouse/reading.ts';
import type { Warehouse } from '../activities/warehouse/types.ts';
import { backfillHome } from '../host/settings.ts';

/** Where a reader looks: `location` (--warehouse, which commander fills from $BACKFILL_WAREHOUSE), else the default SQLite file. */
export function warehouseTarget(location: string | undefined): string {
  return location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
}

/** `invalid_argument`: no warehouse at `location`; `reader` names the command, `hint` ends the fix. */
export function noWarehouse(location: string | undefined, reader: string, hint?: string): BackfillError {
  return new BackfillError('invalid_argument', nothingWritten(`no warehouse at ${warehouseTarget(location)}`, `${reader} reads`, hint), 'warehouse');
}

/**
 * Opens the warehouse at `location` on this thread for reading only (nothing is set up: a
 * reader's role may only SELECT, its file may be read-only), or throws `noWarehouse` when none
 * is there. A PostgreSQL database without backfill's ledger is found at the first read (`NoLedgerError`).
 */
export async function openExistingWarehouse(location: string | undefined, reader: string, hint?: string): Promise<Warehouse> {
  const target = warehouseTarget(location);
  const warehouse = await openIfThere(target);
  if (!warehouse) throw noWarehouse(target, reader, hint);
  return warehouse;
}

/**
 * For a reader that goes on without a ledger (`report`, `plan --estimate`): the warehouse at
 * `location` opened for reading only, or null when no warehouse is there or it holds no
 * backfill ledger (a PostgreSQL database the workers never wrote to).
 */
export async function openLedgerIfThere(location: string | undefined): Promise<Warehouse | null> {
  const [warehouse, { NoLedgerError }] = await Promise.all([openIfThere(warehouseTarget(location)), import('../activities/warehouse/reading.ts')]);
  if (!warehouse) return null;
  try {
    await warehouse.identity();
    return warehouse;
  } catch (error) {
    await warehouse.close();
    if (error instanceof NoLedgerError) return null;
    throw error;
  }
}

/** The warehouse at `target` opened on this thread for reading only, or null when none is there. */
async function openIfThere(target: string): Promise<Warehouse | null> {
  const { openWarehouse, warehouseExists } = await import('../activities/warehouse/index.ts');
  return warehouseExists(target) ? openWarehouse(target, { inline: true, readOnly: true }) : null;
}
