/**
 * A secured cluster: the real Temporal server (deploy/temporal/production.yaml on PostgreSQL) with
 * TLS on its frontend and client certificates required. The command line (gRPC-js) and workers
 * (the SDK's Rust core) connect through TEMPORAL_TLS_* variables and through a profile of a
 * temporal.toml, the example completes, and wrong certificates are refused, each with its cause.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackfillClient } from '../../client/backfill-client.ts';
import { resolveConnection } from '../../client/connection.ts';
import { connectWorker } from '../../client/local.ts';
import { BackfillError } from '../../core/errors.ts';
import { SEARCH_ATTRIBUTES } from '../../client/search-attributes.ts';
import { expandPlan } from '../../core/plan.ts';
import { parseRange } from '../../core/spec.ts';
import { loadSpecFile } from '../../client/spec-file.ts';
import { openWarehouse } from '../../activities/warehouse/index.ts';
import { dropDatabase } from '../../scripts/postgres.ts';
import { startTemporalCluster, type TemporalCluster } from '../../scripts/temporal-cluster.ts';
import { resolveTemporalServer } from '../../scripts/temporal-server.ts';
import type { WorkerProcess } from '../../scripts/worker-process.ts';
import { issueCertificate, makeCertificateAuthority, type CertificateAuthority, type CertificatePair } from '../certificates.ts';
import { EXAMPLE_TRANSFORMS, ROOT, exampleSpec, runCli, scratch, uniqueQueue, waitFor, workerProcess } from './helpers.ts';

type Env = Record<string, string>;
type CliError = { error: { code: string; message: string } };

/** January 2024 of the example: its six nodes, daily, weekly and monthly. */
const FROM = '2024-01-01';
const TO = '2024-02-01';

/** What each wrong connection must be told, whichever client made it: three refusals by the server, then two by the client or its settings. */
const REFUSALS = {
  'no client certificate': /^the Temporal server requires a client certificate \(mTLS\), and none was sent .*: set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/,
  'a certificate of another CA': /^the Temporal server rejected the client certificate \(CN=intruder, issued by CN=other test CA\): it is not signed by a CA the server trusts .*; set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/,
  'a wrong server name': /^the Temporal server's certificate does not match the name temporal\.example\.invalid \(it names localhost, 127\.0\.0\.1\) .*: set TEMPORAL_TLS_SERVER_NAME to one of those names$/,
  'no CA for the server': /^the Temporal server's certificate \(issued by CN=trusted test CA\) is not trusted by this client: .*; set TEMPORAL_TLS_SERVER_CA_CERT_PATH to the certificate of the CA that issued it$/,
  'TLS off': /^the Temporal server speaks TLS, and TLS is off in these settings .*: set TEMPORAL_TLS=true/,
} as const;
type Refusal = keyof typeof REFUSALS;

describe('a Temporal server that requires client certificates', () => {
  const databasePrefix = `backfill_tls_${randomUUID().slice(0, 8)}`;
  let dir: string;
  let cluster: TemporalCluster | undefined;
  let trusted: CertificateAuthority;
  let client: CertificatePair;
  let intruder: CertificatePair;
  /** Connection settings as TEMPORAL_* variables, with no config file in sight. */
  let tlsEnv: Env;
  /** The same through profile `secure` of a temporal.toml, which names the server `localhost`. */
  let profileEnv: Env;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dir = scratch('tls');
    trusted = await makeCertificateAuthority(dir, 'trusted');
    const other = await makeCertificateAuthority(dir, 'other');
    const [server, systemWorker] = await Promise.all([
      issueCertificate(trusted, 'frontend', 'server', ['localhost', '127.0.0.1']),
      issueCertificate(trusted, 'system-worker', 'client', ['temporal-system-worker']),
    ]);
    [client, intruder] = await Promise.all([issueCertificate(trusted, 'backfill', 'client', ['backfill']), issueCertificate(other, 'intruder', 'client', ['intruder'])]);
    cluster = await startTemporalCluster({
      databasePrefix,
      logFile: join(dir, 'temporal-server.log'),
      tls: {
        cert: server.cert,
        key: server.key,
        clientCa: trusted.cert,
        systemWorker: { cert: systemWorker.cert, key: systemWorker.key, serverCa: trusted.cert, serverName: 'localhost' },
        client: { serverRootCACertificate: readFileSync(trusted.cert), clientCertPair: { crt: readFileSync(client.cert), key: readFileSync(client.key) } },
      },
    });
    // XDG_CONFIG_HOME: a directory without temporalio/temporal.toml, whatever this machine has.
    const noConfig = { XDG_CONFIG_HOME: join(dir, 'no-config'), TEMPORAL_CONFIG_FILE: '', TEMPORAL_PROFILE: '' };
    tlsEnv = {
      ...noConfig,
      TEMPORAL_ADDRESS: cluster.address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: trusted.cert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: client.cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: client.key,
    };
    const toml = join(dir, 'temporal.toml');
    writeFileSync(
      toml,
      [
        '[profile.secure]',
        `address = "${cluster.address}"`,
        'namespace = "default"',
        '[profile.secure.tls]',
        `server_ca_cert_path = "${trusted.cert}"`,
        `client_cert_path = "${client.cert}"`,
        `client_key_path = "${client.key}"`,
        'server_name = "localhost"',
        '',
      ].join('\n'),
    );
    profileEnv = { TEMPORAL_ADDRESS: '', TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'secure' };
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await cluster?.stop();
    if (!process.env.BACKFILL_KEEP_TEST_FILES && cluster) {
      await Promise.all(Object.values(cluster.databases).map((name) => dropDatabase(name)));
    }
  });

  /** Waits until the server applies the search attributes that `backfill setup` registered (its namespace cache lags). */
  async function searchAttributesApplied(env: Env): Promise<void> {
    const secured = await BackfillClient.connect({ settings: resolveConnection({}, { ...process.env, ...env }) });
    try {
      const query = Object.keys(SEARCH_ATTRIBUTES).map((name) => `${name} IS NULL`).join(' AND ');
      await waitFor('the search attributes to be usable', () => secured.connection.workflowService.listWorkflowExecutions({ namespace: secured.namespace, query, pageSize: 1 }).then(() => true), 30_000, 250);
    } finally {
      await secured.close();
    }
  }

  /** A worker, `start` and `status --watch`, all connected through `env`; the worker says how it connected, as `polling` expects. */
  async function runExample(name: string, env: Env, polling: RegExp): Promise<void> {
    const queue = uniqueQueue(`tls-${name}`);
    const warehouse = join(dir, `${name}.db`);
    const worker = workerProcess({ address: '', queue, warehouse, transforms: [EXAMPLE_TRANSFORMS], env });
    workers.push(worker);
    await worker.start();
    expect(worker.log).toMatch(polling);

    const spec = exampleSpec(dir, queue);
    const started = await runCli<{ backfillId: string }>(['start', spec, '--id', `shop-${queue}`, '--from', FROM, '--to', TO, '--json'], { ...env, BACKFILL_TASK_QUEUE: queue });
    expect(started.code, `${name}: ${started.stdout}${started.stderr}`).toBe(0);
    const { backfillId } = started.json!;
    // status --watch: until the backfill ends, then its final status.
    const status = await runCli<{ state: string; nodes: Array<{ id: string; total: number; done: number; failed: number }> }>(['status', backfillId, '--watch', '--interval', '500ms', '--json'], env);
    expect(status.code, `${name}: ${status.stdout}${status.stderr}`).toBe(0);
    expect(status.json!.state).toBe('completed');
    const plan = expandPlan((await loadSpecFile(spec)).spec, parseRange(FROM, TO));
    expect(status.json!.nodes.map((n) => n.done).reduce((a, b) => a + b, 0)).toBe(plan.totalPartitions);
    expect(status.json!.nodes.every((n) => n.failed === 0)).toBe(true);

    // This path's worker did the work: every partition is published in its warehouse.
    const ledger = openWarehouse(warehouse, { inline: true });
    try {
      const published = (await ledger.ledger({ backfillId })).filter((r) => r.status === 'published');
      expect(new Set(published.map((r) => `${r.node}/${r.partition}`)).size).toBe(plan.totalPartitions);
    } finally {
      await ledger.close();
    }
    await worker.stop();
  }

  it('setup, start, status and a worker connect through TEMPORAL_TLS_* variables and through a profile of temporal.toml, and the example completes on both', async () => {
    type Setup = { namespace: string; added: string[]; existing: string[] };
    const viaEnv = await runCli<Setup>(['setup', '--json'], tlsEnv);
    expect(viaEnv.code, viaEnv.stdout + viaEnv.stderr).toBe(0);
    expect(viaEnv.json!.added.sort()).toEqual(Object.keys(SEARCH_ATTRIBUTES).sort());
    const viaProfile = await runCli<Setup>(['setup', '--json'], profileEnv);
    expect(viaProfile.code, viaProfile.stdout + viaProfile.stderr).toBe(0);
    expect(viaProfile.json!.existing.sort()).toEqual(Object.keys(SEARCH_ATTRIBUTES).sort());
    await searchAttributesApplied(tlsEnv);

    // Two backfills at once, each with its own worker, task queue and warehouse.
    await Promise.all([
      runExample('env', tlsEnv, /worker polling \S+ on 127\.0\.0\.1:\d+, namespace default, TLS;/),
      runExample('profile', profileEnv, /worker polling \S+ on 127\.0\.0\.1:\d+, namespace default, profile 'secure' of \S+temporal\.toml, TLS;/),
    ]);
  });

  it('the server config refuses to require client certificates when its own system worker has none', async () => {
    const { server } = await resolveTemporalServer();
    const run = promisify(execFile)(server, ['--root', ROOT, '--config', 'deploy/temporal', '--env', 'production', '--allow-no-auth', 'start'], {
      cwd: ROOT,
      timeout: 30_000,
      env: { ...process.env, TEMPORAL_TLS_FRONTEND_CERT: trusted.cert, TEMPORAL_TLS_FRONTEND_KEY: trusted.key, TEMPORAL_TLS_CLIENT_CA_CERT: trusted.cert },
    });
    const failed = await run.then(
      () => undefined,
      (error: Error & { code?: number; stdout?: string; stderr?: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(`${failed?.stdout}${failed?.stderr}`).toMatch(/TEMPORAL_TLS_CLIENT_CA_CERT makes the frontend require client certificates, and the server's own system worker needs one too: set TEMPORAL_TLS_SYSTEM_WORKER_CERT and TEMPORAL_TLS_SYSTEM_WORKER_KEY/);
  });

  /** The wrong connections, as TEMPORAL_* variables. */
  function wrong(refusal: Refusal): Env {
    switch (refusal) {
      case 'no client certificate':
        return { ...tlsEnv, TEMPORAL_TLS_CLIENT_CERT_PATH: '', TEMPORAL_TLS_CLIENT_KEY_PATH: '' };
      case 'a certificate of another CA':
        return { ...tlsEnv, TEMPORAL_TLS_CLIENT_CERT_PATH: intruder.cert, TEMPORAL_TLS_CLIENT_KEY_PATH: intruder.key };
      case 'a wrong server name':
        return { ...tlsEnv, TEMPORAL_TLS_SERVER_NAME: 'temporal.example.invalid' };
      case 'no CA for the server':
        return { ...tlsEnv, TEMPORAL_TLS_SERVER_CA_CERT_PATH: '' };
      case 'TLS off':
        return { ...tlsEnv, TEMPORAL_TLS: 'false' };
    }
  }

  it('refuses each wrong connection with its cause, in the command line (gRPC-js) and in a worker (the Rust core) alike', async () => {
    const refusals = Object.keys(REFUSALS) as Refusal[];
    const failure = (attempt: Promise<{ close(): Promise<void> }>) =>
      attempt.then(
        async (connection) => {
          await connection.close();
          return new Error('connected');
        },
        (error: unknown) => error as Error,
      );
    // What the command line and `backfill worker` call, in this process; and once each as the
    // processes themselves, to see the message reach the user.
    const [inProcess, cli, worker] = await Promise.all([
      Promise.all(
        refusals.map((refusal) => {
          const settings = resolveConnection({}, { ...process.env, ...wrong(refusal) });
          return Promise.all([failure(BackfillClient.connect({ settings })), failure(connectWorker(settings))]);
        }),
      ),
      runCli<CliError>(['status', 'any-id', '--json'], wrong('no client certificate')),
      (async () => {
        const refused = workerProcess({ address: '', queue: uniqueQueue('tls-refused'), warehouse: join(dir, 'refused.db'), env: wrong('a certificate of another CA') });
        workers.push(refused);
        return refused.start().then(
          () => 'connected',
          (error: Error) => error.message,
        );
      })(),
    ]);
    refusals.forEach((refusal, i) => {
      for (const [client, error] of [['gRPC-js', inProcess[i]![0]], ['Rust core', inProcess[i]![1]]] as const) {
        expect(error, `${refusal}, ${client}`).toBeInstanceOf(BackfillError);
        expect((error as BackfillError).code, `${refusal}, ${client}`).toBe('server_unavailable');
        expect(error.message, `${refusal}, ${client}`).toMatch(REFUSALS[refusal]);
      }
    });
    expect(cli.code).toBe(1);
    expect(cli.json?.error, cli.stdout + cli.stderr).toMatchObject({ code: 'server_unavailable', message: expect.stringMatching(REFUSALS['no client certificate']) });
    // A worker that cannot connect exits with `error: <message>` on stderr.
    expect(worker).toMatch(/^the worker exited: /);
    expect(worker.replace(/^the worker exited: (error: )?/, '')).toMatch(REFUSALS['a certificate of another CA']);
  });
});
