/** The PostgreSQL that tests and the local Temporal server use, and its databases. */
import pg from 'pg';

export const DEFAULT_TEST_POSTGRES_URL = 'postgres://backfill:backfill@127.0.0.1:5432/postgres';

/** $BACKFILL_TEST_POSTGRES_URL, or the cluster .ci/run sets up. */
export function testPostgresUrl(): string {
  return process.env.BACKFILL_TEST_POSTGRES_URL ?? DEFAULT_TEST_POSTGRES_URL;
}

export type PostgresEndpoint = { host: string; port: number; user: string; password: string; database: string };

export function parsePostgresUrl(url: string): PostgresEndpoint {
  const parsed = new URL(url);
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`'${url}' is not a PostgreSQL URL: write postgres://user:password@host:port/database`);
  }
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 5432,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)) || 'postgres',
  };
}

const DOWN = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT']);
/** invalid_password, invalid_authorization_specification (no such role), invalid_catalog_name (no such database). */
const REFUSED = new Set(['28P01', '28000', '3D000']);

function connectError(url: string, error: unknown): Error {
  const code = (error as { code?: unknown }).code;
  const { host, port, user } = parsePostgresUrl(url);
  const where = `PostgreSQL at ${host}:${port}`;
  const message = (error as Error).message || String(error);
  if (typeof code === 'string' && DOWN.has(code)) {
    return new Error(`${where} is not reachable (${message}): start it (pg_ctlcluster 15 main start), or run bash .ci/run, or point BACKFILL_TEST_POSTGRES_URL at a running server`, { cause: error });
  }
  if (typeof code === 'string' && REFUSED.has(code)) {
    return new Error(`${where} refused role ${user} (${message}): run bash .ci/run (it creates the superuser role backfill/backfill), or fix BACKFILL_TEST_POSTGRES_URL`, { cause: error });
  }
  return error instanceof Error ? error : new Error(message);
}

/** Runs `fn` on a connection to `url`; a PostgreSQL that is down or refuses the role fails with the fix. */
export async function withPostgres<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw connectError(url, error);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function databaseExists(name: string, url = testPostgresUrl()): Promise<boolean> {
  return withPostgres(url, async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
}

/** Creates the database unless it exists; true when it was created. */
export async function createDatabase(name: string, url = testPostgresUrl()): Promise<boolean> {
  return withPostgres(url, async (client) => {
    if ((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return true;
    } catch (error) {
      // Someone else created it between the check and the CREATE.
      if ((error as { code?: unknown }).code === '42P04') return false;
      throw error;
    }
  });
}

/** The URL of database `name` on the server of `url` (same user, password and parameters). */
export function databaseUrl(name: string, url = testPostgresUrl()): string {
  const at = new URL(url);
  at.pathname = `/${name}`;
  return at.toString();
}

/** Drops the database if it exists, disconnecting whoever still uses it. */
export async function dropDatabase(name: string, url = testPostgresUrl()): Promise<void> {
  await withPostgres(url, (client) => client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
}
