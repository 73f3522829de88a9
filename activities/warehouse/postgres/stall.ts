/** A transaction's connection whose server stopped answering: given up after its deadline. */
import pg from 'pg';
import { CommitDeadlineError } from '../types.ts';

/**
 * How long past its deadline a transaction's connection may stay silent: the server's own
 * statement_timeout (`PostgresSession.limit`) has stopped the statement by then, unless the
 * server does not answer at all.
 */
export const STALL_GRACE_MS = 2_000;

/**
 * Gives up a transaction's connection that is still busy `STALL_GRACE_MS` after the deadline:
 * its server no longer answers (its process stopped, the network gone), so no statement_timeout
 * can end the wait. The transaction stops waiting (`race`) and fails with `given`, its socket is
 * closed, and the connection leaves the pool (released with `given`) instead of holding the
 * next publish behind a statement that never ends.
 */
export class Stall {
  given: Error | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly gone: Promise<never>;

  constructor(client: pg.PoolClient, deadline: number, location: string) {
    let giveUp: (error: Error) => void = () => undefined;
    this.gone = new Promise<never>((_, fail) => (giveUp = fail));
    this.timer = setTimeout(() => {
      this.given = new CommitDeadlineError(
        `the PostgreSQL warehouse ${location} did not answer within ${STALL_GRACE_MS / 1000} s of the partition's deadline (its server process stopped, or the network to it is down): ` +
          'its connection is closed, and the partition is retried (should the COMMIT have reached the server, the retry finds the partition published)',
      );
      closeSocket(client);
      giveUp(this.given);
    }, Math.max(0, deadline - Date.now()) + STALL_GRACE_MS);
  }

  /** `work`'s result, or `given` as soon as the connection is given up, without waiting for statements that may never be answered. */
  race<T>(work: Promise<T>): Promise<T> {
    // Once given up, work fails (its socket closed) or never settles: either way, nothing waits for it.
    work.catch(() => undefined);
    return Promise.race([work, this.gone]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Closes `client`'s socket at once, so that the statements it sent fail now; false when it cannot.
 *
 * pg has no public call for this: `end()`, and the pool's `release(error)` that calls it, wait on a
 * pipelining client for the answers still due, for ever from a server that no longer answers.
 * pg's own Client holds its socket at `connection.stream` (declared by @types/pg; pg-pool destroys
 * it the same way when a connection times out). A client without it (pg-native, a pg that moved
 * it) keeps its socket until the server answers or TCP gives up: the transaction does not wait for
 * it (Stall.race), and the pool drops it as the transaction releases it with the error.
 */
export function closeSocket(client: pg.PoolClient): boolean {
  if (!(client instanceof pg.Client)) return false;
  const stream: unknown = client.connection?.stream;
  if (typeof stream !== 'object' || stream === null || !('destroy' in stream) || typeof stream.destroy !== 'function') return false;
  stream.destroy();
  return true;
}
