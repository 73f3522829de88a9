/**
 * The warehouse a command only reads (`lineage`, `diff`, `report`, `--only-changed`). Opening a
 * SQLite file (or a lake) that is not there creates an empty one, which then answers "no
 * version", "never published" or "nothing staged" for a mistyped --warehouse; so these readers
 * open only a warehouse that exists, and otherwise say where they looked and what to check.
 */
import { join } from 'node:path';
import { BackfillError } from '../core/errors.ts';
import type { Warehouse } from '../activities/warehouse/types.ts';
import { backfillHome } from '../host/settings.ts';

/** Where a reader looks: `location` (--warehouse, which commander fills from $BACKFILL_WAREHOUSE), else the default SQLite file. */
export function warehouseTarget(location: string | undefined): string {
  return location && location.length > 0 ? location : join(backfillHome(), 'warehouse.db');
}

/** `invalid_argument`: no warehouse at `location`; `reader` names the command, `hint` ends the fix. */
export function noWarehouse(location: string | undefined, reader: string, hint?: string): BackfillError {
  return new BackfillError(
    'invalid_argument',
    `no warehouse at ${warehouseTarget(location)}: ${reader} reads the ledger the workers wrote, and nothing is there (none was created). ` +
      `Check --warehouse or BACKFILL_WAREHOUSE: give the workers' warehouse${hint ? `; ${hint}` : ''}`,
    'warehouse',
  );
}

/** Opens the warehouse at `location` on this thread, or throws `noWarehouse` when none is there. */
export async function openExistingWarehouse(location: string | undefined, reader: string, hint?: string): Promise<Warehouse> {
  const { openWarehouse, warehouseExists } = await import('../activities/warehouse/index.ts');
  const target = warehouseTarget(location);
  if (!warehouseExists(target)) throw noWarehouse(target, reader, hint);
  return openWarehouse(target, { inline: true });
}
