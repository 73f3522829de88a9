/**
 * OpenLineage's published JSON schemas that backfill's events follow, for the test that
 * validates every event against them (test/integration/openlineage-schema.test.ts). They are
 * not kept in this repository. Each file must have the SHA-256 pinned below, so what the test
 * validates against is exactly the published version the events name in their `_schemaURL`s,
 * wherever it came from:
 *
 * - By default, from a package on crates.io that ships them verbatim (`SPEC_PACKAGE`): the core
 *   schema and five of the eleven facet schemas the events name. It is downloaded once, checked
 *   against its own SHA-256, and unpacked into .backfill/openlineage-spec/. The facets it lacks
 *   are checked against the core schema's definition of a facet only.
 * - From a folder that has them all: the `website/static/spec` folder of a checkout of the
 *   OpenLineage repository (the tree openlineage.io/spec serves: `2-0-2/OpenLineage.json`,
 *   `facets/<version>/<Facet>.json`), or its `spec` folder.
 *
 *   node --import tsx scripts/openlineage-spec.ts [<OpenLineage checkout>/website/static/spec]
 *
 * fills the cache (`OPENLINEAGE_SPEC_DIR`, read by the test, gives the folder).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FACET_SCHEMA_URLS, RUN_EVENT_SCHEMA_URL } from '../core/openlineage.ts';
import { PACKAGE_ROOT } from '../host/package.ts';

/** SHA-256 of each schema file, by its path under https://openlineage.io/spec/. */
export const SPEC_FILES: Readonly<Record<string, string>> = {
  '2-0-2/OpenLineage.json': '69f68bee00b9beac88a87059c0102410e7bb05f3f43c46d02a0409831eceb0d2',
  'facets/1-2-0/ParentRunFacet.json': 'efdd06ef87537849f1ec7984cc2e36cbdcea40083635c20fd9af1934ba601d57',
  'facets/1-0-1/NominalTimeRunFacet.json': 'd9520e5731c7d1d25e1372730859b4efc986a9d4bd2315fe63c946957fe343b6',
  'facets/1-1-1/ProcessingEngineRunFacet.json': '7cc28d9996802685f484dcd5d4be48517f5a23a4c9ab00837e9936b769f68e10',
  'facets/1-0-1/ErrorMessageRunFacet.json': 'b11b4ee8b0f99f6846264f87cad48390255c7ef142ce623216660c7097be0ea6',
  'facets/2-0-4/JobTypeJobFacet.json': '11c12cab95a411ca31066c80d2bb4aefd37bbcadbda5e4d343d2069853b907d5',
  'facets/1-1-0/DocumentationJobFacet.json': 'b5823685c20c712d9ee1e3b310ad6ca426be7b46db60acd9f23248811af3c8d4',
  'facets/1-2-0/SchemaDatasetFacet.json': '50236a779aa64baa0bad0055391838bd22fcb36ce667c41d60ada80915e899b6',
  'facets/1-0-1/DatasourceDatasetFacet.json': 'f18db2745c1cc96ae49a52a8cbc30dd45a88446e73b4cf96def9faa5166cbfeb',
  'facets/1-0-2/OutputStatisticsOutputDatasetFacet.json': 'd89f01440d08e10bb6e4a95c437f736e70034058f97d4955a35e1cda70c9d37e',
  'facets/1-1-0/DataQualityAssertionsDatasetFacet.json': '65c785790728ccf3f1fe326a0a064a91934b242807a015c2c3e99bde913abc56',
  'facets/1-0-0/BaseSubsetDatasetFacet.json': '5f270e440b586beae7c4b31bef495dda940cd0f2830e10b442e9f8f6855b11c1',
};

export const SPEC_SITE = 'https://openlineage.io/spec/';

/** The file under openlineage.io/spec/ that a schema URL (with or without a fragment) names. */
export function specPath(schemaUrl: string): string {
  const path = schemaUrl.split('#')[0]!;
  if (!path.startsWith(SPEC_SITE)) throw new Error(`${schemaUrl} is not a schema under ${SPEC_SITE}`);
  return path.slice(SPEC_SITE.length);
}

// Every schema an event names is pinned above, and nothing else.
const named = new Set([RUN_EVENT_SCHEMA_URL, ...Object.values(FACET_SCHEMA_URLS)].map(specPath));
const pinned = new Set(Object.keys(SPEC_FILES));
if (named.size !== pinned.size || [...named].some((p) => !pinned.has(p))) {
  throw new Error(`scripts/openlineage-spec.ts pins ${[...pinned].sort().join(', ')} but the events name ${[...named].sort().join(', ')}: pin the schemas core/openlineage.ts names`);
}

export const SPEC_CACHE = join(PACKAGE_ROOT, '.backfill', 'openlineage-spec');

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function verified(dir: string, path: string): boolean {
  const file = join(dir, path);
  return existsSync(file) && sha256(file) === SPEC_FILES[path];
}

/**
 * The pinned schema files present in `dir`, each checked against its pin: a validator loads
 * these and nothing else, so a file put there by hand (altered, or not pinned) is never used.
 */
export function pinnedFiles(dir: string): string[] {
  const found: string[] = [];
  for (const path of Object.keys(SPEC_FILES)) {
    const file = join(dir, path);
    if (!existsSync(file)) continue;
    if (!verified(dir, path)) throw new Error(`${file} is not the pinned ${path} (its SHA-256 differs): delete ${dir} and run the test again to fetch the schemas anew`);
    found.push(file);
  }
  return found;
}

/** Where a pinned file is in a source folder: the site's tree, or the repository's unversioned `spec` folder. */
function findIn(source: string, path: string): string | undefined {
  const candidates = [join(source, path), join(source, basename(path)), join(source, 'facets', basename(path))];
  return candidates.find((file) => existsSync(file) && sha256(file) === SPEC_FILES[path]);
}

/**
 * A published package that carries the core schema and some facet schemas, byte for byte as
 * OpenLineage publishes them (test fixtures of a Rust crate, Apache-2.0 like the schemas,
 * copied from OpenLineage 1.50.0): the only registry copy found. Its own SHA-256 is pinned too.
 */
export const SPEC_PACKAGE = {
  url: 'https://static.crates.io/crates/datafusion-openlineage/datafusion-openlineage-0.0.12.crate',
  sha256: 'c3174cdfb83e6ada02b64b2684f696ca382886cae5ce98d12ec802bbb1392129',
  folder: 'datafusion-openlineage-0.0.12/tests/schemas/openlineage',
} as const;

const CORE = specPath(RUN_EVENT_SCHEMA_URL);

/**
 * Copies the pinned schemas from `source` into `target`; returns the ones it cannot find.
 * `complete`: every one must be there (a checkout's folder); else the core schema must.
 */
export function installSpec(source: string, target = SPEC_CACHE, complete = true): string[] {
  const missing: string[] = [];
  for (const path of Object.keys(SPEC_FILES)) {
    if (verified(target, path)) continue;
    const file = findIn(resolve(source), path);
    if (!file) {
      missing.push(path);
      continue;
    }
    mkdirSync(dirname(join(target, path)), { recursive: true });
    copyFileSync(file, join(target, path));
  }
  if (complete ? missing.length > 0 : missing.includes(CORE)) {
    throw new Error(
      `${source} has no copy of ${missing.join(', ')} with the pinned SHA-256: give the website/static/spec folder of an OpenLineage checkout (it keeps every published version)`,
    );
  }
  return missing;
}

/** Downloads `SPEC_PACKAGE`, checks it, and installs the pinned schemas it has; returns the ones it lacks. */
export async function fetchSpec(target = SPEC_CACHE): Promise<string[]> {
  const response = await fetch(SPEC_PACKAGE.url).catch((error: unknown) => {
    throw new Error(`cannot download OpenLineage's schemas from ${SPEC_PACKAGE.url}: ${(error as Error).message}; or give a folder that has them (OPENLINEAGE_SPEC_DIR)`);
  });
  if (!response.ok) throw new Error(`downloading ${SPEC_PACKAGE.url} answered ${response.status}; or give a folder that has OpenLineage's schemas (OPENLINEAGE_SPEC_DIR)`);
  const bytes = Buffer.from(await response.arrayBuffer());
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (sum !== SPEC_PACKAGE.sha256) throw new Error(`${SPEC_PACKAGE.url} has SHA-256 ${sum}, not the pinned ${SPEC_PACKAGE.sha256}: it is not the package this test was written against`);
  const dir = mkdtempSync(join(tmpdir(), 'backfill-openlineage-'));
  try {
    const archive = join(dir, 'package.tar.gz');
    writeFileSync(archive, bytes);
    execFileSync('tar', ['-xzf', archive, '-C', dir, SPEC_PACKAGE.folder]);
    return installSpec(join(dir, SPEC_PACKAGE.folder), target, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The folder of verified schemas, and the pinned ones it lacks. */
export type InstalledSpec = { dir: string; missing: string[] };

/** The cache of verified schemas: filled from `OPENLINEAGE_SPEC_DIR` when set, else from `SPEC_PACKAGE` when it lacks the core. */
export async function openLineageSpec(env: NodeJS.ProcessEnv = process.env): Promise<InstalledSpec> {
  const lacking = () => Object.keys(SPEC_FILES).filter((path) => !verified(SPEC_CACHE, path));
  if (env.OPENLINEAGE_SPEC_DIR) installSpec(env.OPENLINEAGE_SPEC_DIR);
  else if (lacking().includes(CORE)) await fetchSpec();
  return { dir: SPEC_CACHE, missing: lacking() };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(fileURLToPath(import.meta.url))) {
  const source = process.argv[2] ?? process.env.OPENLINEAGE_SPEC_DIR;
  const missing = source ? installSpec(source) : await fetchSpec();
  console.log(`OpenLineage schemas verified in ${SPEC_CACHE}${missing.length > 0 ? `; not in ${SPEC_PACKAGE.url}: ${missing.join(', ')}` : ''}`);
}
