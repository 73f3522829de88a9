/** Makes sure a Temporal CLI is available (building it once with go install if needed) and prints its path. */
import { resolveTemporalCli } from './temporal-cli.ts';

const path = await resolveTemporalCli();
process.stdout.write(`${path}\n`);
