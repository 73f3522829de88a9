/** Registers the project's search attributes on a namespace when they are missing. */
import type { Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import proto from '@temporalio/proto';

/** Search attributes the workflows set, so that the Web UI can filter by backfill and node. */
export const SEARCH_ATTRIBUTES = { BackfillId: 'Keyword', BackfillNode: 'Keyword' } as const;

const known = new Set<string>();

export async function ensureSearchAttributes(connection: Connection | NativeConnection, namespace: string): Promise<void> {
  if (known.has(namespace)) return;
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.keys(SEARCH_ATTRIBUTES).filter((name) => !(name in (existing.customAttributes ?? {})));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
  }
  known.add(namespace);
}
