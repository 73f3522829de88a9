/** How a transaction gives up a PostgreSQL connection that stopped answering (postgres-hang.test has the real server). */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { STALL_GRACE_MS, Stall, closeSocket } from '../../activities/warehouse/postgres/stall.ts';
import { CommitDeadlineError } from '../../activities/warehouse/types.ts';

describe('closeSocket', () => {
  it("destroys the socket of pg's own Client", () => {
    const client = new pg.Client();
    expect(closeSocket(client as pg.PoolClient)).toBe(true);
    expect(client.connection.stream.destroyed).toBe(true);
  });

  it('leaves alone a client without that socket (pg-native, a pg that moved it)', () => {
    const native = Object.create(pg.Client.prototype) as pg.PoolClient;
    expect(closeSocket(native)).toBe(false);
    expect(closeSocket({} as pg.PoolClient)).toBe(false);
  });
});

describe('Stall', () => {
  it('ends the wait with its error at the deadline and the grace, even when the socket cannot be closed', async () => {
    const stall = new Stall({} as pg.PoolClient, Date.now() - STALL_GRACE_MS + 50, 'postgres://db');
    try {
      const never = new Promise<never>(() => undefined);
      const error = await stall.race(never).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CommitDeadlineError);
      expect(error).toBe(stall.given);
      expect((error as Error).message).toMatch(/^the PostgreSQL warehouse postgres:\/\/db did not answer within 2 s of the partition's deadline/);
    } finally {
      stall.clear();
    }
  });

  it("hands on the work's own result or error before then", async () => {
    const stall = new Stall({} as pg.PoolClient, Date.now() + 60_000, 'postgres://db');
    try {
      expect(await stall.race(Promise.resolve(7))).toBe(7);
      await expect(stall.race(Promise.reject(new Error('syntax error')))).rejects.toThrow('syntax error');
      expect(stall.given).toBeUndefined();
    } finally {
      stall.clear();
    }
  });
});
