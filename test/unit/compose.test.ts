// docker-compose.yml is the production topology, and no Docker engine runs in CI: these tests read
// it as data and hold it to what `docker compose up` would otherwise only teach at run time. Each
// test collects every problem it finds, as a sentence naming the service, and expects none.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Condition = 'service_started' | 'service_healthy' | 'service_completed_successfully';
type PortMapping = string | number | { target: number; published?: string | number; host_ip?: string };
type VolumeMount = string | { type?: string; source?: string; target: string };

/** The parts of the Compose specification these tests read. */
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  container_name?: string;
  depends_on?: string[] | Record<string, { condition?: Condition }>;
  ports?: PortMapping[];
  volumes?: VolumeMount[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
  environment?: Record<string, string | number | boolean | null> | string[];
  entrypoint?: string | string[];
  command?: string | string[];
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services?: Record<string, Service> };
const services = compose.services ?? {};
const named = Object.entries(services);

const TOPOLOGY = ['postgresql', 'temporal-schema', 'temporal', 'temporal-namespace', 'search-attributes', 'ui', 'warehouse', 'worker', 'cli'];
const DATABASE_IMAGES = new Set(['postgres', 'mysql', 'mariadb', 'cassandra', 'elasticsearch', 'opensearch']);
const LOOPBACK = new Set(['127.0.0.1', '[::1]']);
/** Who waits for whom, and for what. */
const ORDER: [service: string, dependency: string, condition: Condition][] = [
  ['temporal-schema', 'postgresql', 'service_healthy'],
  ['temporal', 'temporal-schema', 'service_completed_successfully'],
  ['temporal-namespace', 'temporal', 'service_healthy'],
  ['search-attributes', 'temporal-namespace', 'service_completed_successfully'],
  ['ui', 'temporal', 'service_healthy'],
];
const WORKER_WAITS_FOR: [dependency: string, condition: Condition][] = [
  ['temporal', 'service_healthy'],
  ['search-attributes', 'service_completed_successfully'],
  ['warehouse', 'service_healthy'],
];

function dependencies(service: Service): Map<string, Condition> {
  const dependsOn = service.depends_on ?? [];
  if (Array.isArray(dependsOn)) return new Map(dependsOn.map((name) => [name, 'service_started']));
  return new Map(Object.entries(dependsOn).map(([name, { condition }]) => [name, condition ?? 'service_started']));
}

/** `registry:5000/team/name:tag@sha256:…` → `{ repository: 'name', tag: 'tag' }`. */
function imageParts(image: string): { repository: string; tag: string | null } {
  const [reference = ''] = image.split('@');
  const last = reference.slice(reference.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  return colon < 0 ? { repository: last, tag: null } : { repository: last.slice(0, colon), tag: last.slice(colon + 1) };
}

const isDatabase = (service: Service): boolean => service.image !== undefined && DATABASE_IMAGES.has(imageParts(service.image).repository);

/** A service running `backfill worker`: the repo's image with its entrypoint, and `worker` (its default command). */
function isWorker(service: Service): boolean {
  const command = typeof service.command === 'string' ? service.command.split(/\s+/) : service.command;
  return service.build !== undefined && service.entrypoint === undefined && (command === undefined || command[0] === 'worker');
}

/** Where a `ports:` entry listens on the host: its address ('' for every interface) and its fixed port, if any. */
function hostBinding(port: PortMapping): { address: string; port: string | null } {
  if (typeof port === 'number') return { address: '', port: null };
  if (typeof port === 'object') return { address: port.host_ip ?? '', port: port.published === undefined ? null : String(port.published) };
  // [[address:]published:]target[/protocol]; the address only when two more parts follow it.
  const groups = /^(?:(?<address>\[[^\]]*\]|[^:]*):(?=[^:]*:))?(?:(?<published>[^:]*):)?[^:]+$/.exec(port.split('/')[0] ?? '')?.groups;
  return { address: groups?.address ?? '', port: groups?.published || null };
}

function environment(service: Service): Map<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return new Map(env.map((entry): [string, string] => {
    const [key = '', ...value] = entry.split('=');
    return [key, value.join('=')];
  }));
  return new Map(Object.entries(env).map(([key, value]) => [key, String(value ?? '')]));
}

/** Bind mounts of files in this repository: `./path:/target[:ro]`. */
function repoMounts(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? []).flatMap((volume) => {
    const [source = '', target = ''] = typeof volume === 'string' ? volume.split(':') : [volume.source ?? '', volume.target];
    return source.startsWith('.') ? [{ source, target }] : [];
  });
}

describe('docker-compose.yml', () => {
  it('has every service of the topology', () => {
    expect(TOPOLOGY.filter((name) => !(name in services)).map((name) => `service "${name}" is missing`)).toEqual([]);
  });

  it('pins every image to an exact version', () => {
    const problems = named.flatMap(([name, service]) => {
      if (service.image === undefined) return service.build === undefined ? [`service "${name}" has neither image nor build`] : [];
      const { tag } = imageParts(service.image);
      if (tag === null) return [`service "${name}": image "${service.image}" has no tag`];
      if (/latest/i.test(tag) || !/^v?\d+\.\d+/.test(tag)) return [`service "${name}": image "${service.image}" is not pinned to a major.minor[.patch] tag`];
      return [];
    });
    expect(problems).toEqual([]);
  });

  it('publishes the databases and the Temporal frontend on 127.0.0.1 only', () => {
    const problems = named
      .filter(([name, service]) => isDatabase(service) || name === 'temporal')
      .flatMap(([name, service]) =>
        (service.ports ?? [])
          .filter((port) => !LOOPBACK.has(hostBinding(port).address))
          .map((port) => `service "${name}": port ${JSON.stringify(port)} is published beyond this host; bind it to 127.0.0.1`),
      );
    expect(problems).toEqual([]);
  });

  it('starts in an order that can happen: known services, the right conditions, no cycle', () => {
    const problems: string[] = [];
    for (const [name, service] of named) {
      for (const [dependency, condition] of dependencies(service)) {
        const target = services[dependency];
        if (target === undefined) problems.push(`service "${name}" depends on "${dependency}", which does not exist`);
        else if (condition === 'service_healthy' && target.healthcheck?.test === undefined)
          problems.push(`service "${name}" waits for "${dependency}" to be healthy, which has no health check`);
        else if (condition === 'service_completed_successfully' && target.restart !== undefined && target.restart !== 'no')
          problems.push(`service "${name}" waits for "${dependency}" to complete, which restarts (${target.restart}) instead`);
      }
    }
    const workers = named.filter(([, service]) => isWorker(service)).map(([name]) => name);
    if (!workers.includes('worker')) problems.push('service "worker" does not run `backfill worker`');
    const expected = [...ORDER, ...workers.flatMap((worker) => WORKER_WAITS_FOR.map(([dependency, condition]) => [worker, dependency, condition] as const))];
    for (const [name, dependency, condition] of expected) {
      const actual = services[name] === undefined ? undefined : dependencies(services[name]).get(dependency);
      if (actual !== condition) problems.push(`service "${name}" must wait for "${dependency}" with condition ${condition} (has ${actual ?? 'none'})`);
    }

    // Depth-first search; a service met again while still on the path closes a cycle.
    const done = new Set<string>();
    const visit = (name: string, path: string[]): void => {
      if (path.includes(name)) {
        problems.push(`depends_on cycle: ${[...path.slice(path.indexOf(name)), name].join(' → ')}`);
        return;
      }
      if (done.has(name) || services[name] === undefined) return;
      for (const dependency of dependencies(services[name]).keys()) visit(dependency, [...path, name]);
      done.add(name);
    };
    for (const [name] of named) visit(name, []);
    expect(problems).toEqual([]);
  });

  it('health-checks the databases and the Temporal server', () => {
    const problems = named
      .filter(([name, service]) => isDatabase(service) || name === 'temporal')
      .filter(([, service]) => service.healthcheck?.test === undefined || service.healthcheck.disable === true)
      .map(([name]) => `service "${name}" has no health check`);
    expect(problems).toEqual([]);
  });

  it('lets the workers scale: no container name, no fixed host port', () => {
    const problems = named
      .filter(([, service]) => isWorker(service))
      .flatMap(([name, service]) => [
        ...(service.container_name === undefined ? [] : [`service "${name}": container_name "${service.container_name}" allows only one container`]),
        ...(service.ports ?? [])
          .filter((port) => hostBinding(port).port !== null)
          .map((port) => `service "${name}": host port ${JSON.stringify(port)} allows only one container`),
      ]);
    expect(problems).toEqual([]);
  });

  it('mounts files that exist, and the server reads the dynamic config it mounts', () => {
    const problems = named.flatMap(([name, service]) =>
      repoMounts(service)
        .filter(({ source }) => !existsSync(join(ROOT, source)))
        .map(({ source }) => `service "${name}" mounts ${source}, which is not in the repository`),
    );
    const temporal = services.temporal ?? {};
    const dynamicConfig = environment(temporal).get('DYNAMIC_CONFIG_FILE_PATH');
    const mount = repoMounts(temporal).find(({ target }) => target === dynamicConfig);
    if (mount === undefined) problems.push(`service "temporal": DYNAMIC_CONFIG_FILE_PATH (${dynamicConfig ?? 'unset'}) is not a file mounted from the repository`);
    else if (existsSync(join(ROOT, mount.source)) && !statSync(join(ROOT, mount.source)).isFile())
      problems.push(`service "temporal": its dynamic config ${mount.source} is not a file`);
    expect(problems).toEqual([]);
  });

  it("connects the workers to the warehouse as a role that is not its superuser, which a mounted init script creates", () => {
    const problems: string[] = [];
    const warehouse = services.warehouse ?? {};
    const superuser = environment(warehouse).get('POSTGRES_USER') ?? 'postgres';
    for (const [name, service] of named.filter(([, service]) => isWorker(service))) {
      const location = environment(service).get('BACKFILL_WAREHOUSE') ?? '';
      const user = /^postgres(?:ql)?:\/\/([^:@/]+)/.exec(location)?.[1];
      if (user === undefined) problems.push(`service "${name}": BACKFILL_WAREHOUSE names no PostgreSQL user`);
      else if (user === superuser) problems.push(`service "${name}" connects to the warehouse as ${user}, its superuser (POSTGRES_USER)`);
    }
    const init = repoMounts(warehouse).filter(({ target }) => target.startsWith('/docker-entrypoint-initdb.d/'));
    if (init.length === 0) problems.push('service "warehouse" mounts no init script to create the workers\' role');
    for (const { source } of init) {
      const path = join(ROOT, source);
      if (existsSync(path) && !/NOSUPERUSER/.test(readFileSync(path, 'utf8'))) problems.push(`service "warehouse": ${source} does not create a role with NOSUPERUSER`);
      if (existsSync(path) && (statSync(path).mode & 0o111) === 0) problems.push(`service "warehouse": ${source} is not executable, so the image would source it into its own shell`);
    }
    expect(problems).toEqual([]);
  });

  it('builds from contexts that have a Dockerfile', () => {
    const problems = named.flatMap(([name, { build }]) => {
      if (build === undefined) return [];
      const { context = '.', dockerfile = 'Dockerfile' } = typeof build === 'string' ? { context: build } : build;
      return existsSync(join(ROOT, context, dockerfile)) ? [] : [`service "${name}" builds from ${context}, which has no ${dockerfile}`];
    });
    expect(problems).toEqual([]);
  });
});
