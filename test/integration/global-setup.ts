/**
 * One real Temporal dev server (built by host/temporal-cli.ts like everywhere else, on a
 * SQLite file) and one workflow bundle for the whole integration suite.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../../host/dev-server.ts';
import { bundleWorkflows } from '../../workers/worker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    scratchDir: string;
  }
}

let server: DevServer | undefined;
let scratch: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  scratch = mkdtempSync(join(tmpdir(), 'backfill-test-'));
  server = await startDevServer({ dbFile: join(scratch, 'temporal.db'), uiPort: null, logFile: join(scratch, 'temporal.log') });
  const bundle = await bundleWorkflows();
  const bundlePath = join(scratch, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('scratchDir', scratch);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (scratch && !process.env.BACKFILL_KEEP_TEST_FILES) rmSync(scratch, { recursive: true, force: true });
}
