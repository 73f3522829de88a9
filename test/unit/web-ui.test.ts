/** Which Web UI the command line links to (client/web-ui.ts): the dev server's lock is read, never trusted blindly. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockPath, runningDevServer } from '../../host/dev-server-lock.ts';
import { knownLink, sameServer, webUiOf, webUiText } from '../../client/web-ui.ts';

describe('sameServer', () => {
  it('takes every loopback name for one host, and no other host or port', () => {
    expect(sameServer('127.0.0.1:7233', 'localhost:7233')).toBe(true);
    expect(sameServer('[::1]:7300', '127.0.0.1:7300')).toBe(true);
    expect(sameServer('127.0.0.1:7233', 'localhost:7300')).toBe(false);
    expect(sameServer('127.0.0.1:7233', 'temporal.internal:7233')).toBe(false);
    expect(sameServer('temporal.internal:7233', 'temporal.internal:7233')).toBe(true);
  });
});

describe('webUiOf', () => {
  let home: string | undefined;
  afterEach(() => {
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('prefers BACKFILL_UI_URL, and knows none without it when no dev server of backfill runs in the home', async () => {
    home = mkdtempSync(join(tmpdir(), 'web-ui-'));
    expect(await webUiOf('localhost:7233', { home, uiUrl: 'https://ui.example' })).toBe('https://ui.example');
    expect(await webUiOf('localhost:7233', { home })).toBeNull();
  });

  it('does not take a lock whose process does not run the dev server it names', async () => {
    home = mkdtempSync(join(tmpdir(), 'web-ui-'));
    const dbFile = join(home, 'temporal.db');
    // This very process runs, but not the command the lock records.
    writeFileSync(lockPath(dbFile), JSON.stringify({ owner: process.pid, pid: process.pid, command: ['temporal', 'server', 'start-dev', '--db-filename', dbFile], address: '127.0.0.1:7233', uiUrl: 'http://localhost:8300' }));
    expect(runningDevServer(dbFile)).toBeUndefined();
    expect(await webUiOf('localhost:7233', { home })).toBeNull();
  });
});

describe('what a command prints of a link', () => {
  it('prints the link of a client that knows its Web UI, and how to set one otherwise', () => {
    expect(knownLink({ webUi: 'http://ui' }, 'http://ui/x')).toBe('http://ui/x');
    expect(knownLink({ webUi: null }, 'http://localhost:8233/x')).toBeNull();
    expect(webUiText('http://ui/x')).toBe('http://ui/x');
    expect(webUiText(null)).toMatch(/^not known for this server \(to link to it, set BACKFILL_UI_URL/);
  });
});
