// The Dockerfile, read as data (no Docker engine runs in CI): a multi-stage build whose final
// stage holds the compiled package and its production dependencies only, runs as an unprivileged
// user, and starts compiled JavaScript; and the compose services built from it run what it holds.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../client/cli.ts';
import { ROOT, compiledSources, sourceOf } from './build-sources.ts';

type Instruction = { keyword: string; args: string; line: number };
type Stage = { name: string; image: string; instructions: Instruction[] };

/** Stages and their instructions: comments dropped, continuation lines joined, keywords upper-cased. */
function parseDockerfile(text: string): Stage[] {
  const logical: Array<{ text: string; line: number }> = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (pending === '' && line === '')) return;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    logical.push({ text: pending + line, line: start });
    pending = '';
  });
  const stages: Stage[] = [];
  for (const { text: instruction, line } of logical) {
    const [, word = '', args = ''] = /^(\S+)\s*(.*)$/.exec(instruction) ?? [];
    const keyword = word.toUpperCase();
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`line ${line}: cannot read FROM ${args}`);
      stages.push({ image: from[1]!, name: from[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ keyword, args, line });
    } else if (keyword !== 'ARG') {
      throw new Error(`line ${line}: ${keyword} before the first FROM`);
    }
  }
  return stages;
}

/** A COPY's flags (`from`, `chown`, ...), sources and destination. */
function copyOf(instruction: Instruction): { flags: Record<string, string>; sources: string[]; destination: string } {
  const words = instruction.args.split(/\s+/);
  const flags = Object.fromEntries(words.filter((w) => w.startsWith('--')).map((w) => w.slice(2).split('=') as [string, string]));
  const paths = words.filter((w) => !w.startsWith('--'));
  return { flags, sources: paths.slice(0, -1), destination: paths.at(-1) ?? '' };
}

/** An exec-form (JSON array) ENTRYPOINT or CMD. */
function execForm(instruction: Instruction | undefined): string[] | undefined {
  if (!instruction?.args.startsWith('[')) return undefined;
  return JSON.parse(instruction.args) as string[];
}

const runs = (stage: Stage, pattern: RegExp) => stage.instructions.some((i) => i.keyword === 'RUN' && pattern.test(i.args));
/** An npm install of every dependency, dev ones included. */
const INSTALLS_ALL = /\bnpm (ci|install|i)\b(?![^&;|]*--omit=dev)(?![^&;|]*--production)/;
const INSTALLS_PRODUCTION = /\bnpm (ci|install|i)\b[^&;|]*(--omit=dev|--production)|\bnpm prune\b[^&;|]*--omit=dev/;
const last = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).at(-1);

const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const final = stages.at(-1)!;
const stage = (name: string | undefined) => stages.find((s) => s.name === name);
const copies = (target: Stage) => target.instructions.filter((i) => i.keyword === 'COPY').map(copyOf);

/** `node:20-bookworm-slim` → { major: '20', distro: 'bookworm' }. */
function nodeImage(image: string): { major: string; distro: string } | undefined {
  const tag = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)(?:\.[\d.]+)?-([a-z]+)/.exec(image);
  return tag ? { major: tag[1]!, distro: tag[2]! } : undefined;
}

describe('Dockerfile', () => {
  it('builds in stages: one runs npm ci and npm run build, and the runtime stage comes last', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(new Set(stages.map((s) => s.name)).size).toBe(stages.length);
    const builders = stages.filter((s) => runs(s, INSTALLS_ALL) && runs(s, /\bnpm run build\b/));
    expect(builders.map((s) => s.name)).not.toEqual([]);
    expect(builders).not.toContain(final);
    const problems = stages.flatMap((s, index) =>
      copies(s)
        .filter(({ flags }) => flags.from !== undefined && !stages.slice(0, index).some((earlier) => earlier.name === flags.from))
        .map(({ flags }) => `stage ${s.name} copies from '${flags.from}', which is not an earlier stage`),
    );
    expect(problems).toEqual([]);
  });

  it('runs as an unprivileged user', () => {
    const user = last(final, 'USER')?.args.split(':')[0];
    expect(user, 'the final stage sets no USER: it would run as root').toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });

  it('holds no dev dependencies and no sources in the final stage', () => {
    expect(runs(final, INSTALLS_ALL), 'the final stage installs dev dependencies').toBe(false);
    const fromContext = copies(final).filter(({ flags }) => flags.from === undefined).flatMap(({ sources }) => sources);
    expect(fromContext.filter((source) => source === '.' || /\.[mc]?ts$/.test(source)), 'the final stage copies sources from the build context').toEqual([]);
    const modules = copies(final).find(({ sources }) => sources.some((s) => /node_modules\/?$/.test(s)));
    expect(modules, 'the final stage has no node_modules').toBeDefined();
    const installer = stage(modules!.flags.from);
    expect(installer && runs(installer, INSTALLS_PRODUCTION) && !runs(installer, INSTALLS_ALL), `node_modules comes from stage ${modules!.flags.from}, which does not install production dependencies only`).toBe(true);
  });

  it('starts the compiled command line with node, no TypeScript loader', () => {
    const entrypoint = execForm(last(final, 'ENTRYPOINT'));
    expect(entrypoint, 'ENTRYPOINT must be in exec form, ["node", "dist/….js"]').toBeDefined();
    const [command, script = '', ...rest] = entrypoint!;
    expect(command).toBe('node');
    expect(rest.join(' ')).not.toMatch(/tsx|--import|--loader/);
    expect(compiledSources(), `ENTRYPOINT runs ${script}, which is not compiled from a source in tsconfig.build.json`).toContain(sourceOf(script));
    const dist = copies(final).find(({ sources }) => sources.some((s) => /\/dist\/?$/.test(s)));
    expect(dist && runs(stage(dist.flags.from)!, /\bnpm run build\b/), 'dist/ must come from the stage that builds it').toBe(true);
    expect(execForm(last(final, 'CMD'))).toEqual(['worker']);
  });

  it('runs node_modules on the Node and Debian release they were installed with', () => {
    const installer = stage(copies(final).find(({ sources }) => sources.some((s) => /node_modules\/?$/.test(s)))?.flags.from);
    const [built, running] = [nodeImage(installer?.image ?? ''), nodeImage(final.image)];
    expect(built, `stage ${installer?.name} is not on a node:<major>-<debian> image`).toBeDefined();
    expect(running).toEqual(built);
  });
});

type Service = { build?: string | { context?: string; dockerfile?: string; target?: string }; entrypoint?: string | string[]; command?: string | string[]; environment?: Record<string, string | number | boolean | null> | string[] };

describe('docker-compose.yml on this image', () => {
  const services = Object.entries((parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> }).services);
  const built = services.filter(([, service]) => service.build !== undefined);
  const words = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : value.split(/\s+/));

  it('builds a stage that exists, or the runtime stage', () => {
    const problems = built.flatMap(([name, { build }]) => {
      const target = typeof build === 'object' ? build.target : undefined;
      return target === undefined || stage(target) ? [] : [`service "${name}" builds target '${target}', which is not a stage of the Dockerfile`];
    });
    expect(built.map(([name]) => name)).toContain('worker');
    expect(problems).toEqual([]);
  });

  it("runs commands the image has: compiled modules, no TypeScript, the command line's own commands", async () => {
    const commands = new Set([...(await buildProgram()).commands.map((c) => c.name()), '--help']);
    const compiled = new Set(compiledSources());
    const problems = built.flatMap(([name, service]) => {
      const env = Array.isArray(service.environment) ? service.environment : Object.entries(service.environment ?? {}).map(([k, v]) => `${k}=${String(v)}`);
      const mentioned = [...words(service.entrypoint), ...words(service.command), ...env].join(' ');
      const paths = [...mentioned.matchAll(/[\w./-]+\.[mc]?[jt]s\b/g)].map((m) => m[0]);
      const command = words(service.command)[0];
      return [
        ...paths.filter((p) => !compiled.has(sourceOf(p) ?? '')).map((p) => `service "${name}" uses ${p}, which the image does not hold compiled (dist/… built from a source in tsconfig.build.json)`),
        ...(service.entrypoint === undefined && command !== undefined && !commands.has(command) ? [`service "${name}" runs 'backfill ${command}', which is not a command`] : []),
      ];
    });
    expect(problems).toEqual([]);
  });
});
