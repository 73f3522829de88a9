/**
 * Each recorded history's workflow id, kept beside the histories of a scenario (recordings from
 * `core2-r` on): replay gives a history the id it ran under, as workflow code may read it (a
 * signed start checks that its signature is for its own backfill). Older recordings have no such
 * file, and their histories replay under a made-up id, which nothing they recorded reads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const WORKFLOW_IDS = 'workflow-ids.json';

/** The workflow ids of a scenario's history files, by file name (empty for a recording without them). */
export function recordedWorkflowIds(scenarioDir: string): Record<string, string> {
  const file = join(scenarioDir, WORKFLOW_IDS);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
}
