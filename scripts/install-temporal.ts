/**
 * Makes sure the Temporal CLI (dev server, Web UI) and the Temporal server with its SQL schema tool
 * (clusters on PostgreSQL) are available, building them once with go install where needed, and
 * prints their paths.
 */
import { resolveTemporalCli } from '../host/temporal-cli.ts';
import { resolveTemporalServer } from './temporal-server.ts';

const cli = await resolveTemporalCli();
const { server, sqlTool } = await resolveTemporalServer();
process.stdout.write(`${cli}\n${server}\n${sqlTool}\n`);
