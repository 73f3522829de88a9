/** A connected client for one command, closed when the command is done. */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { BackfillClient, ConnectOptions } from './backfill-client.ts';
import { connectionFlags } from './options.ts';

/**
 * `options` as `BackfillClient.connect` takes them (`checkNamespace`). Its links go to the Web UI
 * the command line knows for the server (client/web-ui.ts); where it knows none, `client.webUi`
 * is null and commands print how to set one instead of a link.
 */
export async function connect(command: CommandUnknownOpts, options: Pick<ConnectOptions, 'checkNamespace'> = {}): Promise<BackfillClient> {
  const [{ BackfillClient }, { settingsFromEnv }, { resolveConnection }, { webUiOf }] = await Promise.all([
    import('./backfill-client.ts'),
    import('../host/settings.ts'),
    import('./connection.ts'),
    import('./web-ui.ts'),
  ]);
  const defaults = settingsFromEnv();
  const settings = resolveConnection(connectionFlags(command));
  const uiUrl = await webUiOf(settings.address, defaults);
  return BackfillClient.connect({ settings, defaults, ...(uiUrl !== null ? { uiUrl } : {}), ...options });
}

export async function withClient<T>(command: CommandUnknownOpts, run: (client: BackfillClient) => Promise<T>, options: Pick<ConnectOptions, 'checkNamespace'> = {}): Promise<T> {
  const client = await connect(command, options);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}
