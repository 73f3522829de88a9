/**
 * Which Web UI the command line links to. `BACKFILL_UI_URL` when set; else, when the command
 * connects to the dev server that `backfill dev` (or `demo`) runs on `$BACKFILL_HOME/temporal.db`,
 * that server's Web UI, as its lock records it; else none is known, and a command prints how to
 * set one instead of a link that may lead nowhere (a cluster's Web UI is anywhere, and even a
 * Temporal on localhost:7233 may have its Web UI on another port: docker-compose.yml's is on 8080).
 *
 * No static import: commands load this module for their help text; the lock is read on demand.
 */
import type { Settings } from '../host/settings.ts';

/** The address's host (without brackets) and port; undefined when it is not `host:port`. */
function endpoint(address: string): { host: string; port: string } | undefined {
  try {
    const url = new URL(address.includes('://') ? address : `grpc://${address}`);
    return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port };
  } catch {
    return undefined;
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

/** Whether two addresses name one server: the same port on the same host, every name of this machine's loopback counting as one. */
export function sameServer(a: string, b: string): boolean {
  const [x, y] = [endpoint(a), endpoint(b)];
  if (x === undefined || y === undefined || x.port !== y.port) return false;
  return x.host === y.host || (LOOPBACK.has(x.host) && LOOPBACK.has(y.host));
}

/**
 * The Web UI for a command that connects to `address`: BACKFILL_UI_URL (`settings.uiUrl`), else
 * the Web UI of the dev server backfill runs in `settings.home` when it serves `address`; null
 * when neither says.
 */
export async function webUiOf(address: string, settings: Pick<Settings, 'uiUrl' | 'home'>): Promise<string | null> {
  if (settings.uiUrl !== undefined) return settings.uiUrl;
  const [{ join }, { runningDevServer }] = await Promise.all([import('node:path'), import('../host/dev-server-lock.ts')]);
  // The database `backfill dev` and `demo` keep their server's state in (client/local.ts).
  const dev = runningDevServer(join(settings.home, 'temporal.db'));
  return dev !== undefined && dev.uiUrl !== null && sameServer(dev.address, address) ? dev.uiUrl : null;
}

/** A link the client made, when it knows its Web UI (`webUi`); null when the link would be a guess. */
export function knownLink(client: { readonly webUi: string | null }, link: string): string | null {
  return client.webUi !== null ? link : null;
}

/** What a command prints after `web UI:`: the link, or, when no Web UI is known, how to get links. */
export function webUiText(link: string | null): string {
  return link ?? "not known for this server (to link to it, set BACKFILL_UI_URL to your Temporal Web UI's address, e.g. export BACKFILL_UI_URL=http://localhost:8080)";
}
