/** The one zod issue worth telling a user, with its path: how the spec and the policy report a bad document. */
import type { z } from 'zod';
import { closestNames } from './closest.ts';
import { formatPath } from './errors.ts';

export type ZodProblem = { path: PropertyKey[]; message: string };

const UNKNOWN_FIELDS = 'has unknown field(s) ';

const unknownFields = (keys: readonly string[], known: readonly string[] = []): string =>
  UNKNOWN_FIELDS +
  keys
    .map((key) => {
      const [closest] = closestNames(key, known, 1);
      return closest === undefined ? `'${key}'` : `'${key}' (did you mean '${closest}'?)`;
    })
    .join(', ');

/**
 * An error map for `safeParse` that words an unknown field with the known field it is likely
 * a typo of (`'dependOn' (did you mean 'dependsOn'?)`): only while parsing are the object's
 * known fields at hand. Other issues keep zod's messages.
 */
export function suggestingFields(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== 'unrecognized_keys') return undefined;
  const def = issue.inst?._zod.def;
  const known = def !== undefined && 'shape' in def && typeof def.shape === 'object' && def.shape !== null ? Object.keys(def.shape) : [];
  return unknownFields(issue.keys, known);
}

export function zodProblem(error: z.ZodError): ZodProblem {
  // Report the most specific issue: a union reports its branches' issues nested inside.
  let issue: z.core.$ZodIssue = error.issues[0]!;
  let path: PropertyKey[] = [...issue.path];
  /** The issues found beside the one reported, at the same level (their paths relative alike). */
  let siblings: readonly z.core.$ZodIssue[] = error.issues;
  while (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branches = issue.errors.filter((b) => b.length > 0);
    // A branch that rejects fields of the object itself has the wrong shape (the user meant another branch).
    const wrongShape = (b: z.core.$ZodIssue[]) => b.some((i) => i.code === 'unrecognized_keys' && i.path.length === 0);
    const shaped = branches.filter((b) => !wrongShape(b));
    // Prefer the branch that got furthest (the longest path), which is usually the one the user meant.
    const deepest = (shaped.length > 0 ? shaped : branches).flat().sort((a, b) => b.path.length - a.path.length)[0];
    if (!deepest || deepest.path.length === 0) break;
    siblings = (shaped.length > 0 ? shaped : branches).find((b) => b.includes(deepest)) ?? [];
    path = [...path, ...deepest.path];
    issue = deepest;
  }
  let message = issue.message;
  if (issue.code === 'unrecognized_keys' && !message.startsWith(UNKNOWN_FIELDS)) message = unknownFields(issue.keys);
  if (issue.code === 'invalid_type' && message.startsWith('Invalid input')) {
    message = issue.input === undefined ? 'is required' : `must be ${issue.expected}`;
  }
  if (message === 'is required') message += misnamedHint(issue, siblings);
  return { path, message };
}

/**
 * A missing field beside an unknown one in the same object is most likely that field under
 * another name (`label:` for `name:`): said with the missing one, which zod reports first.
 */
function misnamedHint(missing: z.core.$ZodIssue, siblings: readonly z.core.$ZodIssue[]): string {
  const field = missing.path.at(-1);
  if (field === undefined) return '';
  const owner = missing.path.slice(0, -1);
  const unknown = siblings.find((i): i is z.core.$ZodIssueUnrecognizedKeys => i.code === 'unrecognized_keys' && i.path.length === owner.length && i.path.every((key, n) => key === owner[n]));
  if (!unknown || unknown.keys.length === 0) return '';
  const keys = unknown.keys.map((key) => `'${key}'`).join(', ');
  return `; ${keys} ${unknown.keys.length > 1 ? 'are no fields' : 'is no field'} here: ${unknown.keys.length > 1 ? 'is one of them' : 'is it'} meant as ${String(field)}?`;
}

/**
 * What is wrong with `value` by `schema` (the field under `at`, then what: `tuning.historyLimit
 * must be ...`), or null. Read with the input, so that a field of another type reads "must be
 * object", not "is required".
 */
export function shapeProblem(schema: z.ZodType, value: unknown, at: readonly PropertyKey[]): string | null {
  const parsed = schema.safeParse(value, { reportInput: true, error: suggestingFields });
  if (parsed.success) return null;
  const problem = zodProblem(parsed.error);
  return `${formatPath([...at, ...problem.path])} ${problem.message}`;
}
