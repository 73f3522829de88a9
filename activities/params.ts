/**
 * A transform's params: a deeply frozen copy of the node's, and the failure of a transform
 * that writes to them. Such a write throws a plain TypeError, which a retry would only repeat.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { PARTITION_FAILURES } from '../core/protocol.ts';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * What a transform gets as its params: a frozen copy, one per activity (its partitions share
 * it), so that the ledger records the spec's params, and a partition sees no other's changes.
 */
const frozenParams = new WeakMap<object, Readonly<Record<string, unknown>>>();
export function readOnlyParams(params: Record<string, unknown>): Readonly<Record<string, unknown>> {
  let copy = frozenParams.get(params);
  if (!copy) frozenParams.set(params, (copy = deepFreeze(structuredClone(params))));
  return copy;
}

/** The objects the frozen params are made of: the record and every object or array inside it. */
function objectsOf(value: unknown, into: object[] = []): object[] {
  if (typeof value === 'object' && value !== null) {
    into.push(value);
    for (const member of Object.values(value)) objectsOf(member, into);
  }
  return into;
}

/*
 * V8's messages for a write to a frozen object. Those that name the property and the object
 * (an assignment, a delete) must name a property the params hold, on a plain object or an
 * array (what the copy is made of); an added property names no object, and is taken for a
 * write to the params (a frozen object of the transform's own fails as surely on every retry).
 */
const ASSIGNED = /^Cannot assign to read only property '(.*)' of object '(#<Object>|\[object Array\])'$/s;
const DELETED = /^Cannot delete property '(.*)' of (#<Object>|\[object Array\])$/s;
const ADDED = /^Cannot (?:add|define) property .*, object is not extensible$|^(?:#<Object>|\[object Array\]) is not extensible$/s;

function isParamsWrite(message: string, params: Readonly<Record<string, unknown>>): boolean {
  if (ADDED.test(message)) return true;
  const named = ASSIGNED.exec(message) ?? DELETED.exec(message);
  if (!named) return false;
  const key = named[1]!;
  return objectsOf(params).some((object) => Object.prototype.hasOwnProperty.call(object, key) && Array.isArray(object) === (named[2] === '[object Array]'));
}

/**
 * The failure of a transform that wrote to its frozen params: not retried, and saying how to
 * fix it. Null for any other error, another TypeError too (they keep the retry policy).
 */
export function paramsWriteFailure(error: unknown, params: Readonly<Record<string, unknown>>, where: { transform: string; node: string }): ApplicationFailure | null {
  if (!(error instanceof TypeError) && !(error instanceof Error && error.name === 'TypeError')) return null;
  if (!isParamsWrite(error.message, params)) return null;
  return ApplicationFailure.create({
    message:
      `transform '${where.transform}' of node '${where.node}' wrote to its params (${error.message}): params are read-only, ` +
      'copy them first and change the copy ({ ...params }, or structuredClone(params) for what they hold)',
    type: PARTITION_FAILURES.nonRetryable,
    nonRetryable: true,
    cause: error,
  });
}
