/** A connected client for one command, closed when the command is done. */
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { BackfillClient } from './backfill-client.ts';
import { connectionFlags } from './options.ts';

export async function connect(command: CommandUnknownOpts): Promise<BackfillClient> {
  const [{ BackfillClient }, { settingsFromEnv }] = await Promise.all([import('./backfill-client.ts'), import('../host/settings.ts')]);
  return BackfillClient.connect({ ...connectionFlags(command), defaults: settingsFromEnv() });
}

export async function withClient<T>(command: CommandUnknownOpts, run: (client: BackfillClient) => Promise<T>): Promise<T> {
  const client = await connect(command);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}
