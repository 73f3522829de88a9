/**
 * A BackfillClient with no server behind it, for unit tests: the SDK's client and the
 * connection's services are what the test gives, holding only the calls it expects (any other
 * fails as a missing method), and the caches `status` fills start empty.
 */
import { BackfillClient } from '../../client/backfill-client.ts';
import { LiveEtas } from '../../client/eta.ts';

export type FakeClientParts = {
  /** Stands for the SDK's Client: `workflow.getHandle`, `withDeadline`, `options`, as the test needs. */
  client?: object;
  workflowService?: object;
  operatorService?: object;
  /** `{ namespace: 'default' }` unless given. */
  settings?: object;
  identity?: string;
  defaults?: object;
};

/** The SDK client's `withDeadline` of a test that does not time calls out. */
export const noDeadline = <T>(_deadline: number, fn: () => Promise<T>): Promise<T> => fn();

export function fakeBackfillClient(parts: FakeClientParts = {}): BackfillClient {
  const { workflowService, operatorService, settings = { namespace: 'default' }, ...rest } = parts;
  const client = Object.create(BackfillClient.prototype) as BackfillClient;
  // Without a service given there is no connection: a call to the server fails at once.
  const connection = workflowService || operatorService ? { connection: { workflowService, operatorService } } : {};
  const given = Object.fromEntries(Object.entries({ ...rest, ...connection, settings }).map(([name, value]) => [name, { value }]));
  Object.defineProperties(client, {
    ...given,
    beside: { value: new Set<Promise<void>>() },
    etas: { value: new LiveEtas() },
    plans: { value: new Map() },
    nodeQueues: { value: new Map() },
  });
  return client;
}
