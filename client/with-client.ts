/** A connected client for one command, closed when the command is done. */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { BackfillClient, ConnectOptions } from './backfill-client.ts';
import { connectionFlags } from './options.ts';

/** `options` as `BackfillClient.connect` takes them (`checkNamespace`). */
export async function connect(command: CommandUnknownOpts, options: Pick<ConnectOptions, 'checkNamespace'> = {}): Promise<BackfillClient> {
  const [{ BackfillClient }, { settingsFromEnv }] = await Promise.all([import('./backfill-client.ts'), import('../host/settings.ts')]);
  return BackfillClient.connect({ ...connectionFlags(command), defaults: settingsFromEnv(), ...options });
}

export async function withClient<T>(command: CommandUnknownOpts, run: (client: BackfillClient) => Promise<T>, options: Pick<ConnectOptions, 'checkNamespace'> = {}): Promise<T> {
  const client = await connect(command, options);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}
