/**
 * Who may use a lake's catalogue now. DuckDB lets one process at a time open a database file
 * for writing, and holds an operating-system lock on it while it is open: that lock is the
 * lake's writer lock, across processes and machines that share the directory. It is released
 * when the holder detaches the file, or by the operating system when the holder dies, so a
 * crashed worker never leaves the lake locked.
 *
 * Opening and closing the file costs a checkpoint (a few hundred milliseconds), so a process
 * keeps the catalogue while it works and hands it over only when another process waits: a
 * waiting process leaves a marker file, and the holder, between two of its transactions (or
 * when idle), sees it and lets go.
 *
 * A reader (`lineage`, `diff`, `report`, `rollback --dry-run` against a lake) writes nothing in
 * the lake, not even a marker, so a holder does not let go for it: while another process holds
 * the catalogue, the reader reads a copy of it (the file and its write-ahead log, as of their
 * last commit) made outside the lake.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteLiteral } from '../../../warehouse.ts';
import type { LakeLayout } from './layout.ts';

/** The name the catalogue is attached under in the process's DuckDB. */
export const CATALOG = 'lake';

export type HoldOptions = {
  /** How long a process waits for the catalogue before it gives up (default 120 s). */
  patienceMs?: number;
  /** How long a holder keeps the catalogue at least, when others wait (default 250 ms: a handover costs about that). */
  minHoldMs?: number;
  /** Attach the catalogue read-only (a reader's): it changes nothing in the file. */
  readOnly?: boolean;
  /**
   * A reader's: a directory outside the lake (made when needed, removed on release) where it
   * copies the catalogue while another process holds it. Without one a reader waits as a writer does.
   */
  snapshots?: string;
};

/** How long a reader tries the catalogue itself (holders hand it to one another) before it reads a copy. */
const READER_WAIT_MS = 1_000;
/** Copies a reader makes before it gives up, when the catalogue changes under every one. */
const SNAPSHOT_TRIES = 5;

/** A waiter's marker older than this is a process that stopped waiting without cleaning up. */
const STALE_MARKER_MS = 10_000;
const IDLE_CHECK_MS = 50;

const isLockConflict = (error: unknown) => error instanceof Error && /lock on file|Conflicting lock/i.test(error.message);

/**
 * The operating system's file locks belong to a process, so two holds in one process (two
 * warehouses opened on the same lake) would both attach the file: within a process they take
 * turns by this map of the catalogues attached now, as if the other were another process.
 */
const attachedHere = new Map<string, CatalogueHold>();

class HeldInProcess extends Error {
  constructor(catalog: string) {
    super(`Conflicting lock: another warehouse of this process holds ${catalog}`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CatalogueHold {
  private attached = false;
  private heldSince = 0;
  /** A transaction is using the catalogue: it is not let go under it. */
  busy = false;
  /** Acquiring and releasing take turns. */
  private turn: Promise<unknown> = Promise.resolve();
  private idle: NodeJS.Timeout | undefined;
  private readonly patienceMs: number;
  private readonly minHoldMs: number;
  private readonly readOnly: boolean;
  private readonly snapshots: string | undefined;
  /** The copy of the catalogue attached now (a reader's, while another process holds it). */
  private snapshot: string | undefined;

  constructor(
    private readonly connection: () => Promise<DuckDBConnection>,
    private readonly layout: LakeLayout,
    /** Runs after each attach, before any transaction (recovery of what a crashed holder left undone). */
    private readonly onAttach: () => Promise<void>,
    /** Runs before each detach, while the catalogue is still held. */
    private readonly onRelease: () => Promise<void>,
    options: HoldOptions = {},
  ) {
    this.patienceMs = options.patienceMs ?? 120_000;
    this.minHoldMs = options.minHoldMs ?? 250;
    this.readOnly = options.readOnly === true;
    this.snapshots = this.readOnly ? options.snapshots : undefined;
  }

  get held(): boolean {
    return this.attached;
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.turn.then(work, work);
    this.turn = result.catch(() => undefined);
    return result;
  }

  /** Attaches the catalogue, waiting while another process holds it. */
  acquire(): Promise<void> {
    return this.inTurn(async () => {
      if (this.attached) return;
      const c = await this.connection();
      const started = Date.now();
      let marker: string | undefined;
      let delay = 2;
      try {
        for (;;) {
          try {
            const other = attachedHere.get(this.layout.catalog);
            if (other !== undefined && other !== this) throw new HeldInProcess(this.layout.catalog);
            attachedHere.set(this.layout.catalog, this);
            try {
              await c.run(`ATTACH ${quoteLiteral(this.layout.catalog)} AS ${CATALOG}${this.readOnly ? ' (READ_ONLY)' : ''}`);
            } catch (error) {
              attachedHere.delete(this.layout.catalog);
              throw error;
            }
            break;
          } catch (error) {
            if (!isLockConflict(error)) throw error;
            if (this.snapshots !== undefined && Date.now() - started > READER_WAIT_MS) {
              await this.attachCopy(c, error as Error);
              break;
            }
            if (Date.now() - started > this.patienceMs) {
              throw new Error(
                `the lake ${this.layout.root} stayed locked by another process for ${Math.round(this.patienceMs / 1000)} s (${(error as Error).message.split('\n')[0]}): ` +
                  'a worker or command holds its catalogue and does not let go; find it (the message names its process) and stop it if it hangs',
              );
            }
            if (this.snapshots === undefined) {
              marker ??= this.mark();
              utimesSync(marker, new Date(), new Date());
            }
            await sleep(delay + Math.random() * delay);
            delay = Math.min(delay * 2, 100);
          }
        }
        await c.run(`USE ${CATALOG}`);
        this.attached = true;
        this.heldSince = Date.now();
      } finally {
        if (marker) rmSync(marker, { force: true });
      }
      try {
        await this.onAttach();
      } catch (error) {
        await this.detach();
        throw error;
      }
      this.watch();
    });
  }

  /** After a transaction: lets go when another process waits and this one has had its turn. */
  async done(): Promise<void> {
    if (this.attached && Date.now() - this.heldSince >= this.minHoldMs && this.othersWait()) await this.release();
  }

  release(): Promise<void> {
    return this.inTurn(async () => {
      if (!this.attached || this.busy) return;
      try {
        await this.onRelease();
      } finally {
        await this.detach();
      }
    });
  }

  private async detach(): Promise<void> {
    clearInterval(this.idle);
    this.idle = undefined;
    const c = await this.connection();
    try {
      await c.run('USE memory');
      await c.run(`DETACH ${CATALOG}`);
    } finally {
      this.attached = false;
      if (attachedHere.get(this.layout.catalog) === this) attachedHere.delete(this.layout.catalog);
      if (this.snapshot !== undefined) rmSync(this.snapshots!, { recursive: true, force: true });
      this.snapshot = undefined;
    }
  }

  /**
   * A reader's, while another process holds the catalogue: attaches a copy of it. The holder may
   * commit (append to the log) or checkpoint (rewrite the file) during the copy, so a copy counts
   * only if neither file changed while it was made.
   */
  private async attachCopy(c: DuckDBConnection, conflict: Error): Promise<void> {
    const files = [this.layout.catalog, `${this.layout.catalog}.wal`];
    const state = () => files.map((f) => (existsSync(f) ? (({ ino, size, mtimeMs }) => `${ino}:${size}:${mtimeMs}`)(statSync(f, { bigint: false })) : '-')).join(' ');
    const copy = join(this.snapshots!, `${randomBytes(4).toString('hex')}.duckdb`);
    mkdirSync(this.snapshots!, { recursive: true });
    let last: unknown;
    for (let attempt = 0; attempt < SNAPSHOT_TRIES; attempt++) {
      const before = state();
      rmSync(copy, { force: true });
      rmSync(`${copy}.wal`, { force: true });
      copyFileSync(files[0]!, copy);
      if (existsSync(files[1]!)) copyFileSync(files[1]!, `${copy}.wal`);
      if (state() !== before) {
        await sleep(20 + attempt * 50);
        continue;
      }
      try {
        await c.run(`ATTACH ${quoteLiteral(copy)} AS ${CATALOG} (READ_ONLY)`);
        this.snapshot = copy;
        return;
      } catch (error) {
        last = error;
      }
    }
    rmSync(copy, { force: true });
    rmSync(`${copy}.wal`, { force: true });
    throw new Error(
      `the lake ${this.layout.root} is held by another process (${conflict.message.split('\n')[0]}), and a reader writes nothing in the lake, so it does not ask the holder to let go: ` +
        `it reads a copy of the catalogue instead, and the catalogue changed under each of ${SNAPSHOT_TRIES} copies${last instanceof Error ? ` (${last.message.split('\n')[0]})` : ''}. ` +
        'Run the command again, or when the workers writing to this lake are idle or stopped',
    );
  }

  /** While held and idle, lets go as soon as another process waits. */
  private watch(): void {
    clearInterval(this.idle);
    this.idle = setInterval(() => {
      if (!this.busy && this.attached && this.othersWait()) void this.release().catch(() => undefined);
    }, IDLE_CHECK_MS);
    this.idle.unref();
  }

  private mark(): string {
    mkdirSync(this.layout.waiting, { recursive: true });
    const marker = join(this.layout.waiting, `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(marker, '');
    return marker;
  }

  private othersWait(): boolean {
    let names: string[];
    try {
      names = readdirSync(this.layout.waiting);
    } catch {
      return false;
    }
    const now = Date.now();
    return names.some((name) => {
      try {
        return now - statSync(join(this.layout.waiting, name)).mtimeMs < STALE_MARKER_MS;
      } catch {
        return false;
      }
    });
  }

  /** Lets go for good (the process is done with the lake). */
  async close(): Promise<void> {
    clearInterval(this.idle);
    this.idle = undefined;
    this.busy = false;
    await this.release();
  }
}
