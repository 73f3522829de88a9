/** What the host layer refuses before it runs anything: a port in use, a folder where the Temporal CLI should be. */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { portOr } from '../../client/local.ts';
import { freePort, portFree, requirePortFree, startDevServer } from '../../host/dev-server.ts';
import { runningDevServer } from '../../host/dev-server-lock.ts';
import { cliPlaces, executable, resolveTemporalCli, sharedCliDir, TEMPORAL_CLI_VERSION } from '../../host/temporal-cli.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-host-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function listening(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  cleanups.push(() => new Promise<void>((done) => server.close(() => done())));
  return server;
}

describe('a dev server on a port in use', () => {
  it('is refused, naming the port and the flag, before anything starts', async () => {
    const port = await freePort();
    await expect(requirePortFree('127.0.0.1', port, "the dev server's", '--port')).resolves.toBeUndefined();
    await listening(port);
    await expect(requirePortFree('127.0.0.1', port, "the dev server's", '--port')).rejects.toThrow(
      `the dev server's port 127.0.0.1:${port} is in use (another Temporal server, or a backfill dev still running?): stop it, or choose another port with --port`,
    );
    // Before, another server answering at the port made the start look ready while its own process exited.
    await expect(startDevServer({ dbFile: join(scratch(), 'temporal.db'), port, uiPort: null })).rejects.toThrow(/port 127\.0\.0\.1:\d+ is in use/);
    const uiPort = await freePort();
    await listening(uiPort);
    await expect(startDevServer({ dbFile: join(scratch(), 'temporal.db'), port: await freePort(), uiPort })).rejects.toThrow(/the Web UI's port .* --ui-port/);
  });
});

describe('one probe of a free port, for the dev server and the demo', () => {
  it('says free or in use, rejects an address nothing can listen on, and the demo takes another port when its own is in use', async () => {
    const port = await freePort();
    expect(await portFree('127.0.0.1', port)).toBe(true);
    expect(await portOr(port)).toBe(port);
    await listening(port);
    expect(await portFree('127.0.0.1', port)).toBe(false);
    const other = await portOr(port);
    expect(other).not.toBe(port);
    expect(await portFree('127.0.0.1', other)).toBe(true);
    // TEST-NET-1 (RFC 5737): no interface of this machine has it.
    await expect(portFree('192.0.2.1', port)).rejects.toThrow(/EADDRNOTAVAIL/);
  });
});

/** The states of the IPv4 TCP sockets whose local port is `port`, from the kernel's table (06 is TIME_WAIT, 0A LISTEN). */
function socketStates(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((line) => line.trim().split(/\s+/)).filter((fields) => fields[1]?.endsWith(`:${hex}`)).map((fields) => fields[3]!);
}

describe('a free port for a dev server', () => {
  // A port freed a moment ago went to the next process asking for any port: a dev server beside
  // others found its own, or one the Temporal CLI picked, taken before it bound it (seen in CI).
  it('is kept from asks for any port (TIME_WAIT on its listening side) and can still be bound by its number', async () => {
    const port = await freePort();
    expect(socketStates(port)).toContain('06');
    const server = await listening(port);
    expect((server.address() as { port: number }).port).toBe(port);
  });
});

describe('a dev server that exits before it is ready', () => {
  it('is reported with the last lines of its log, not only the log file to open', async () => {
    const dir = scratch();
    const logFile = join(dir, 'temporal.log');
    // A dynamic config value that is not YAML: the CLI refuses it and exits 1 at once.
    const started = startDevServer({ dbFile: join(dir, 'temporal.db'), uiPort: null, logFile, dynamicConfig: { 'frontend.rps': '[' }, startTimeoutMs: 30_000 });
    await expect(started).rejects.toThrow(/exited \(code 1\) before it was ready; see .*temporal\.log\. It said last:\n.+/s);
  });
});

describe('the Temporal CLI resolver', () => {
  it('takes files it may run, not folders', () => {
    const dir = scratch();
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'script'), '#!/bin/sh\n');
    chmodSync(join(dir, 'script'), 0o755);
    writeFileSync(join(dir, 'plain'), 'x');
    chmodSync(join(dir, 'plain'), 0o644);
    expect([executable(join(dir, 'folder')), executable(join(dir, 'script')), executable(join(dir, 'plain')), executable(join(dir, 'missing'))]).toEqual([false, true, false, false]);
  });

  it('passes over a folder named temporal on PATH', async () => {
    const dir = scratch();
    mkdirSync(join(dir, 'temporal'));
    const { PATH: path, TEMPORAL_CLI_PATH: cliPath } = process.env;
    cleanups.push(() => {
      process.env.PATH = path;
      if (cliPath !== undefined) process.env.TEMPORAL_CLI_PATH = cliPath;
    });
    delete process.env.TEMPORAL_CLI_PATH;
    process.env.PATH = `${dir}:${path}`;
    const cli = await resolveTemporalCli({ allowDownload: false, log: () => undefined });
    expect(cli).not.toBe(join(dir, 'temporal'));
    expect(executable(cli)).toBe(true);
  });
});

describe('one Temporal CLI for every BACKFILL_HOME', () => {
  /** PATH with a fake `go` that "builds" the CLI as a script into $GOBIN and counts its builds, and no `temporal`. */
  function fakeGo(dir: string, seconds = 0): string {
    const bin = join(dir, 'fake-bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'go'), `#!/bin/sh\nmkdir -p "$GOBIN"\necho built >> ${join(dir, 'builds')}\nsleep ${seconds}\nprintf '#!/bin/sh\\n' > "$GOBIN/temporal"\nchmod 755 "$GOBIN/temporal"\n`);
    chmodSync(join(bin, 'go'), 0o755);
    return `${bin}:/usr/bin:/bin`;
  }

  /** A scratch folder, PATH with `fakeGo` (restored after the test), the shared cache in it, and quiet resolve options. */
  function withFakeGo(seconds = 0) {
    const dir = scratch();
    const { PATH: path, TEMPORAL_CLI_PATH: cliPath } = process.env;
    cleanups.push(() => {
      process.env.PATH = path;
      if (cliPath !== undefined) process.env.TEMPORAL_CLI_PATH = cliPath;
    });
    delete process.env.TEMPORAL_CLI_PATH;
    process.env.PATH = fakeGo(dir, seconds);
    return { dir, shared: sharedCliDir({ BACKFILL_CLI_CACHE: join(dir, 'cache') }), quiet: { allowDownload: false, log: () => undefined } };
  }

  it('is built once into the shared cache, and a second home finds it there; a binary in a home\'s bin/ still counts', async () => {
    const { dir, shared, quiet } = withFakeGo();

    const first = await resolveTemporalCli({ ...quiet, places: cliPlaces(join(dir, 'home-a', 'bin'), shared) });
    expect(first).toBe(join(shared, 'temporal'));
    const second = await resolveTemporalCli({ ...quiet, places: cliPlaces(join(dir, 'home-b', 'bin'), shared) });
    expect(second).toBe(first);
    expect(readFileSync(join(dir, 'builds'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(dir, 'home-b', 'bin', 'temporal'))).toBe(false);

    // A home that already has its own binary (from before the shared cache) keeps using it.
    const own = join(dir, 'home-c', 'bin');
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, 'temporal'), '#!/bin/sh\n');
    chmodSync(join(own, 'temporal'), 0o755);
    expect(await resolveTemporalCli({ ...quiet, places: cliPlaces(own, shared) })).toBe(join(own, 'temporal'));
  });

  it('is built by two homes at the same moment without either losing its build, and leaves no staging folder', async () => {
    const { dir, shared, quiet } = withFakeGo(0.3);
    const both = await Promise.all(['home-a', 'home-b'].map((home) => resolveTemporalCli({ ...quiet, places: cliPlaces(join(dir, home, 'bin'), shared) })));
    expect(both).toEqual([join(shared, 'temporal'), join(shared, 'temporal')]);
    expect(readdirSync(shared)).toEqual(['temporal']);
  });

  it('lives in $BACKFILL_CLI_CACHE, $XDG_CACHE_HOME or ~/.cache, one folder per version, and falls back to the home when it cannot be written', () => {
    expect(sharedCliDir({ BACKFILL_CLI_CACHE: '/c', XDG_CACHE_HOME: '/x' }, '/h')).toBe(join('/c', 'temporal-cli', TEMPORAL_CLI_VERSION));
    expect(sharedCliDir({ XDG_CACHE_HOME: '/x' }, '/h')).toBe(join('/x', 'durable-backfill', 'temporal-cli', TEMPORAL_CLI_VERSION));
    expect(sharedCliDir({ XDG_CACHE_HOME: '' }, '/h')).toBe(join('/h', '.cache', 'durable-backfill', 'temporal-cli', TEMPORAL_CLI_VERSION));
    const dir = scratch();
    writeFileSync(join(dir, 'a-file'), 'x');
    // A cache below a file cannot be made, whoever runs the test (root can write anywhere else).
    expect(cliPlaces(join(dir, 'home', 'bin'), join(dir, 'a-file', 'cache'))).toEqual({ lookIn: [join(dir, 'home', 'bin'), join(dir, 'a-file', 'cache')], installTo: join(dir, 'home', 'bin') });
    // A checkout keeps its .backfill/bin as the one cache.
    expect(cliPlaces('/repo/.backfill/bin', undefined)).toEqual({ lookIn: ['/repo/.backfill/bin'], installTo: '/repo/.backfill/bin' });
  });
});

/** Whether a process runs (a zombie that nobody reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The process group of a process, from /proc. */
const processGroup = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[2]);

describe('the dev server process', () => {
  it("runs in a process group of its own, so that the terminal's Ctrl-C reaches only its parent", async () => {
    const server = await startDevServer({ dbFile: join(scratch(), 'temporal.db'), uiPort: null });
    cleanups.push(() => server.stop());
    const pid = server.process.pid!;
    expect(processGroup(pid)).toBe(pid);
    expect(processGroup(process.pid)).not.toBe(pid);
  });

  it('stops when the process that started it dies of an uncaught error', async () => {
    const dir = scratch();
    const script = join(dir, 'starts-and-throws.mjs');
    const root = new URL('../../', import.meta.url);
    writeFileSync(
      script,
      [
        "import { register } from 'node:module';",
        `register(${JSON.stringify(new URL('bin/typescript-loader.mjs', root).href)}, { parentURL: import.meta.url, data: { cacheDir: ${JSON.stringify(join(dir, 'cache'))} } });`,
        `const { startDevServer } = await import(${JSON.stringify(new URL('host/dev-server.ts', root).href)});`,
        `const server = await startDevServer({ dbFile: ${JSON.stringify(join(dir, 'temporal.db'))}, uiPort: null });`,
        'process.stdout.write(`${server.process.pid}\\n`);',
        "setTimeout(() => { throw new Error('uncaught'); }, 100);",
      ].join('\n'),
    );
    const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    parent.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => parent.once('exit', resolve));
    expect(code).toBe(1);
    const pid = Number(stdout.trim());
    expect(pid).toBeGreaterThan(0);
    cleanups.push(() => void (alive(pid) && process.kill(pid, 'SIGKILL')));
    const deadline = Date.now() + 15_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });
});

describe('the dev server database', () => {
  it('is used by one dev server at a time: a second is refused, naming the file, the process that runs it and the fix; a lock left by a process that is gone is taken over, silently', async () => {
    const dbFile = join(scratch(), 'temporal.db');
    const first = await startDevServer({ dbFile, uiPort: null });
    cleanups.push(() => first.stop());
    // Its lock says where it listens (the command line links to its Web UI by it): headless here.
    expect(runningDevServer(dbFile)).toEqual({ address: first.address, uiUrl: null });
    await expect(startDevServer({ dbFile, uiPort: null })).rejects.toThrow(
      `a dev server already uses ${dbFile} (pid ${first.process.pid}, run by process ${process.pid}: a backfill dev or demo?): stop that (Ctrl-C in its terminal, or kill ${process.pid}), or set BACKFILL_HOME to another directory`,
    );
    await first.stop();
    expect(existsSync(`${dbFile}.lock`)).toBe(false);
    expect(runningDevServer(dbFile)).toBeUndefined();

    // As a server and its starter both gone leave it, in this release's form and in the last one's (the pid alone).
    const gone = spawnSync('true').pid;
    const notes: string[] = [];
    for (const lock of [JSON.stringify({ owner: gone, pid: gone, command: ['temporal', 'server', 'start-dev'] }), String(gone)]) {
      writeFileSync(`${dbFile}.lock`, lock);
      const next = await startDevServer({ dbFile, uiPort: null, log: (line) => notes.push(line) });
      expect(JSON.parse(readFileSync(`${dbFile}.lock`, 'utf8'))).toMatchObject({ owner: process.pid, pid: next.process.pid });
      await next.stop();
    }
    expect(notes).toEqual([]);
  });

  it("takes over a lock whose pid now names a process that is not the lock's dev server, and refuses a live pid it cannot check", async () => {
    const dbFile = join(scratch(), 'temporal.db');
    const other = spawn('sleep', ['60']);
    cleanups.push(() => void other.kill('SIGKILL'));
    // The pid came round again: the process behind it is not the server the lock names.
    writeFileSync(`${dbFile}.lock`, JSON.stringify({ owner: other.pid, pid: other.pid, command: ['temporal', 'server', 'start-dev', '--db-filename', dbFile] }));
    const server = await startDevServer({ dbFile, uiPort: null });
    expect(other.exitCode === null && other.signalCode === null).toBe(true);
    await server.stop();

    // Taken by a process that has not started its server yet.
    writeFileSync(`${dbFile}.lock`, JSON.stringify({ owner: other.pid }));
    await expect(startDevServer({ dbFile, uiPort: null })).rejects.toThrow(`process ${other.pid} is starting a dev server on ${dbFile}: stop it (kill ${other.pid}), or set BACKFILL_HOME to another directory`);

    // The last release's lock says the pid alone: whose it is cannot be told.
    writeFileSync(`${dbFile}.lock`, String(other.pid));
    await expect(startDevServer({ dbFile, uiPort: null })).rejects.toThrow(`a dev server already uses ${dbFile} (pid ${other.pid}): stop it (kill ${other.pid}), or set BACKFILL_HOME to another directory`);
    expect(readFileSync(`${dbFile}.lock`, 'utf8')).toBe(String(other.pid));
  });

  it("never stops a process the lock names that is not a Temporal dev server on this database, whatever command line the lock gives", async () => {
    // BACKFILL_HOME (./.backfill by default) may be a checkout's or a shared folder: its lock is anyone's text.
    const dbFile = join(scratch(), 'temporal.db');
    const gone = spawnSync('true').pid;
    const victim = spawn('sleep', ['60']);
    cleanups.push(() => void victim.kill('SIGKILL'));
    // The user's dev server on another database (another BACKFILL_HOME), with its very command line.
    const elsewhere = await startDevServer({ dbFile: join(scratch(), 'temporal.db'), uiPort: null });
    cleanups.push(() => elsewhere.stop());
    const command = readFileSync(`/proc/${elsewhere.process.pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
    for (const [named, lockCommand] of [
      [victim, ['sleep', '60']],
      [elsewhere.process, command],
    ] as const) {
      writeFileSync(`${dbFile}.lock`, JSON.stringify({ owner: gone, pid: named.pid, command: lockCommand }));
      const notes: string[] = [];
      const server = await startDevServer({ dbFile, uiPort: null, log: (line) => notes.push(line) });
      await server.stop();
      expect(notes).toEqual([]);
      expect(named.exitCode === null && named.signalCode === null).toBe(true);
    }
  });

  it("writes its lock through no link someone put where it writes it first, and so clobbers no file of the user's", async () => {
    const dir = scratch();
    const dbFile = join(dir, 'temporal.db');
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    // The lock is written aside, at a name that says the pid, before it is linked in.
    symlinkSync(victim, `${dbFile}.lock.${process.pid}`);
    const server = await startDevServer({ dbFile, uiPort: null });
    await server.stop();
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('is taken by one of two dev servers starting at once over a lock they both take over', async () => {
    const dbFile = join(scratch(), 'temporal.db');
    // A server whose starter is gone: both stop it, then take the lock.
    const orphan = await startDevServer({ dbFile, uiPort: null });
    cleanups.push(() => orphan.stop());
    const lock = JSON.parse(readFileSync(`${dbFile}.lock`, 'utf8')) as Record<string, unknown>;
    writeFileSync(`${dbFile}.lock`, JSON.stringify({ ...lock, owner: spawnSync('true').pid }));
    const started = await Promise.allSettled([startDevServer({ dbFile, uiPort: null, log: () => {} }), startDevServer({ dbFile, uiPort: null, log: () => {} })]);
    for (const s of started) if (s.status === 'fulfilled') cleanups.push(() => s.value.stop());
    expect(started.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = started.find((s) => s.status === 'rejected');
    expect(String(refused?.reason)).toMatch(/(a dev server already uses|is starting a dev server on) \S+temporal\.db/);
  });
});
