/**
 * OpenLineage's published JSON schemas that backfill's events follow, for the tests that
 * validate every event against them. They are not kept in this repository, and no package
 * registry ships them (OpenLineage's clients on PyPI, Maven Central and the Go proxy carry code
 * generated from them, not the schemas), so they come from a copy of what openlineage.io/spec
 * serves: the `website/static/spec` folder of a checkout of the OpenLineage repository (the
 * same tree, `2-0-2/OpenLineage.json`, `facets/<version>/<Facet>.json`), or its `spec` folder.
 *
 *   node --import tsx scripts/openlineage-spec.ts <OpenLineage checkout>/website/static/spec
 *
 * copies them into .backfill/openlineage-spec/ (or `OPENLINEAGE_SPEC_DIR`, read by the tests,
 * does the same on first use). Each file must have the SHA-256 pinned below: what the tests
 * validate against is exactly the published version the events name in their `_schemaURL`s.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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

const SITE = 'https://openlineage.io/spec/';

/** The file under openlineage.io/spec/ that a schema URL (with or without a fragment) names. */
export function specPath(schemaUrl: string): string {
  const path = schemaUrl.split('#')[0]!;
  if (!path.startsWith(SITE)) throw new Error(`${schemaUrl} is not a schema under ${SITE}`);
  return path.slice(SITE.length);
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

/** Where a pinned file is in a source folder: the site's tree, or the repository's unversioned `spec` folder. */
function findIn(source: string, path: string): string | undefined {
  const candidates = [join(source, path), join(source, basename(path)), join(source, 'facets', basename(path))];
  return candidates.find((file) => existsSync(file) && sha256(file) === SPEC_FILES[path]);
}

/** Copies the pinned schemas from `source` into `target`; names the ones it cannot find. */
export function installSpec(source: string, target = SPEC_CACHE): void {
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
  if (missing.length > 0) {
    throw new Error(
      `${source} has no copy of ${missing.join(', ')} with the pinned SHA-256: give the website/static/spec folder of an OpenLineage checkout (it keeps every published version)`,
    );
  }
}

/** The folder of verified schemas: the cache, filled from `OPENLINEAGE_SPEC_DIR` when needed. */
export function openLineageSpecDir(env: NodeJS.ProcessEnv = process.env): string {
  if (Object.keys(SPEC_FILES).every((path) => verified(SPEC_CACHE, path))) return SPEC_CACHE;
  const source = env.OPENLINEAGE_SPEC_DIR;
  if (!source) {
    throw new Error(
      `OpenLineage's JSON schemas are not in ${SPEC_CACHE}: run 'node --import tsx scripts/openlineage-spec.ts <dir>' or set OPENLINEAGE_SPEC_DIR to the website/static/spec folder of an OpenLineage checkout`,
    );
  }
  installSpec(source);
  return SPEC_CACHE;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(fileURLToPath(import.meta.url))) {
  const source = process.argv[2] ?? process.env.OPENLINEAGE_SPEC_DIR;
  if (!source) {
    console.error('usage: node --import tsx scripts/openlineage-spec.ts <OpenLineage checkout>/website/static/spec');
    process.exit(2);
  }
  installSpec(source);
  console.log(`OpenLineage schemas verified in ${SPEC_CACHE}`);
}
