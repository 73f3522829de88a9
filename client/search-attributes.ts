/**
 * The project's search attributes. Registering them is an admin step (`backfill setup`, once
 * per namespace); `start` and the workers only check that they are there.
 */
import type { Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { BackfillError } from '../core/errors.ts';
import { shellWord } from '../core/shell-word.ts';
import { GRPC, grpcCode } from './connection.ts';

/** Search attributes the workflows set, so that the Web UI can filter by backfill, node and state. */
export const SEARCH_ATTRIBUTES = { BackfillId: 'Keyword', BackfillNode: 'Keyword', BackfillStatus: 'Keyword' } as const;
export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;

const NAMES = Object.keys(SEARCH_ATTRIBUTES) as SearchAttributeName[];
const { IndexedValueType } = proto.temporal.api.enums.v1;

type OperatorConnection = Pick<Connection | NativeConnection, 'operatorService'>;

export type SearchAttributeState = {
  missing: SearchAttributeName[];
  existing: SearchAttributeName[];
  /** Registered under one of our names with another type (e.g. Text): setup cannot fix that. */
  wrongType: Array<{ name: SearchAttributeName; type: string }>;
};

/** What `backfill setup` did: which attributes it added and which were already there. */
export type SetupResult = { namespace: string; added: SearchAttributeName[]; existing: SearchAttributeName[] };

/** INDEXED_VALUE_TYPE_KEYWORD_LIST → KeywordList, as Temporal's tools name the types. */
function typeName(type: number): string {
  const words = (IndexedValueType[type] ?? String(type)).replace(/^INDEXED_VALUE_TYPE_/, '').toLowerCase().split('_');
  return words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

/** The namespace's state of our search attributes, or null when these credentials may not list them. */
export async function checkSearchAttributes(connection: OperatorConnection, namespace: string): Promise<SearchAttributeState | null> {
  let custom: Record<string, number>;
  try {
    custom = ((await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {}) as Record<string, number>;
  } catch (error) {
    const code = grpcCode(error);
    if (code === GRPC.PERMISSION_DENIED || code === GRPC.UNIMPLEMENTED) return null;
    throw error;
  }
  const state: SearchAttributeState = { missing: [], existing: [], wrongType: [] };
  for (const name of NAMES) {
    const type = custom[name];
    if (type === undefined) state.missing.push(name);
    else if (type !== IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD) state.wrongType.push({ name, type: typeName(type) });
    else state.existing.push(name);
  }
  return state;
}

function adminNeeded(namespace: string, error: unknown): BackfillError {
  const commands = NAMES.map((name) => `temporal operator search-attribute create --namespace ${shellWord(namespace)} --name ${name} --type Keyword`).join('; ');
  return new BackfillError(
    'failed',
    `registering search attributes on namespace ${namespace} needs admin rights (${(error as Error).message}): ask an admin to run 'backfill setup', or ${commands}; on Temporal Cloud, add ${NAMES.join(', ')} as Keyword with 'tcld namespace search-attributes add' or in the Cloud UI`,
  );
}

function wrongTypeError(namespace: string, wrong: SearchAttributeState['wrongType']): BackfillError {
  const list = wrong.map((w) => `${w.name} is ${w.type}`).join(', ');
  return new BackfillError(
    'failed',
    `namespace ${namespace} has search attributes of the wrong type (${list}; backfill needs Keyword): a type cannot change, so remove them (temporal operator search-attribute remove --namespace ${shellWord(namespace)} --name <name>) and run 'backfill setup' again`,
  );
}

/** `start` refuses to run without the search attributes: this says what to do. */
export function setupRequired(namespace: string, missing: readonly string[]): BackfillError {
  return new BackfillError(
    'failed',
    `namespace ${namespace} lacks the search attribute${missing.length > 1 ? 's' : ''} ${missing.join(', ')} that backfills set: run 'backfill setup' once per namespace (it needs admin rights; on Temporal Cloud add them as Keyword with tcld or the Cloud UI), then start again`,
  );
}

const UNREGISTERED = [/no mapping defined for search attribute (\w+)/i, /search attribute (\w+) is not defined/i, /(\w+) is not a valid search attribute/i];

/** The search attribute a server error says is not registered, if it says so. */
export function unregisteredAttribute(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    for (const pattern of UNREGISTERED) {
      const match = pattern.exec(current.message);
      if (match) return match[1];
    }
    current = current.cause;
  }
  return undefined;
}

/**
 * Fails with the fix (`backfill setup`) when the namespace lacks our search attributes. Returns
 * true when it saw them all, false when these credentials may not list them.
 */
export async function requireSearchAttributes(connection: OperatorConnection, namespace: string): Promise<boolean> {
  const state = await checkSearchAttributes(connection, namespace);
  if (state === null) return false;
  if (state.wrongType.length > 0) throw wrongTypeError(namespace, state.wrongType);
  if (state.missing.length > 0) throw setupRequired(namespace, state.missing);
  return true;
}

/** The server refused a search attribute: missing, or (`listed`) registered so recently that it does not apply it yet. */
export function rejectedAttribute(namespace: string, name: string, listed: boolean): BackfillError {
  if (!listed) return setupRequired(namespace, [name]);
  return new BackfillError(
    'failed',
    `namespace ${namespace} has the search attribute ${name} registered, but the server does not apply it yet (it refreshes its namespace cache every few seconds after 'backfill setup'): start again in a moment`,
  );
}

/** Adds the search attributes the namespace lacks (`backfill setup`); running it again changes nothing. */
export async function registerSearchAttributes(connection: OperatorConnection, namespace: string): Promise<SetupResult> {
  let state: SearchAttributeState | null;
  try {
    state = await checkSearchAttributes(connection, namespace);
  } catch (error) {
    if (grpcCode(error) === GRPC.NOT_FOUND) {
      throw new BackfillError('not_found', `namespace ${namespace} does not exist: create it (temporal operator namespace create --namespace ${shellWord(namespace)}), or choose another with --namespace`);
    }
    throw error;
  }
  if (state === null) throw adminNeeded(namespace, new Error('listing search attributes is not permitted'));
  if (state.wrongType.length > 0) throw wrongTypeError(namespace, state.wrongType);
  if (state.missing.length > 0) {
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(state.missing.map((name) => [name, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
      });
    } catch (error) {
      const code = grpcCode(error);
      if (code === GRPC.PERMISSION_DENIED || code === GRPC.UNIMPLEMENTED) throw adminNeeded(namespace, error);
      throw new BackfillError('failed', `could not add the search attributes ${state.missing.join(', ')} to namespace ${namespace}: ${(error as Error).message}`);
    }
  }
  return { namespace, added: state.missing, existing: state.existing };
}
