/**
 * Validates OpenLineage events against OpenLineage's published JSON schemas (draft 2020-12,
 * with ajv): the event against the core RunEvent schema, and every facet in it against the
 * schema its `_schemaURL` names, under the key that schema gives the facet. A facet whose
 * schema is among `absent` (pinned, but not in the folder: scripts/openlineage-spec.ts) is
 * checked by the core schema's definition of a facet only, and `partlyChecked` names it. It loads
 * the pinned files of the folder only, and refuses one whose SHA-256 is not its pin.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { RUN_EVENT_SCHEMA_URL } from '../../core/openlineage.ts';
import { SPEC_SITE, pinnedFiles, specPath } from '../../scripts/openlineage-spec.ts';

// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = ((addFormatsPlugin as unknown as { default?: typeof addFormatsPlugin }).default ?? addFormatsPlugin) as unknown as (ajv: Ajv2020) => Ajv2020;

type Schema = { $id: string; properties?: Record<string, { $ref?: string }> };

export type SchemaProblem = { where: string; message: string };

export class OpenLineageValidator {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  /** For each facet schema URL: the key its schema file gives the facet (`schema`, `parent`, `subset`, ...). */
  private readonly facetKeys = new Map<string, string>();
  /** The facet schema URLs seen in events whose schemas are absent. */
  readonly partlyChecked = new Set<string>();

  constructor(
    specDir: string,
    private readonly absent: readonly string[] = [],
  ) {
    // `example` is documentation in OpenLineage's schemas, not a keyword ajv knows.
    this.ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
    this.ajv.addKeyword('example');
    addFormats(this.ajv);
    // The pinned files only, each checked against its pin.
    for (const file of pinnedFiles(specDir)) {
      const schema = JSON.parse(readFileSync(file, 'utf8')) as Schema;
      this.ajv.addSchema(schema);
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (property.$ref?.startsWith('#/$defs/')) this.facetKeys.set(`${schema.$id}${property.$ref}`, key);
      }
    }
  }

  private validator(url: string): ValidateFunction | undefined {
    let validate = this.validators.get(url);
    if (!validate) {
      validate = this.ajv.getSchema(url);
      if (validate) this.validators.set(url, validate);
    }
    return validate;
  }

  /** What is wrong with `event`: empty when it validates, facets included. */
  problems(event: unknown): SchemaProblem[] {
    const problems: SchemaProblem[] = [];
    const check = (url: string, value: unknown, where: string) => {
      const validate = this.validator(url);
      if (!validate && url !== RUN_EVENT_SCHEMA_URL && url.startsWith(SPEC_SITE) && this.absent.includes(specPath(url))) return void this.partlyChecked.add(url);
      if (!validate) return void problems.push({ where, message: `names ${url}, which is not among the loaded schemas` });
      if (!validate(value)) for (const e of validate.errors ?? []) problems.push({ where: `${where}${e.instancePath}`, message: `${e.message ?? e.keyword} (${e.schemaPath})` });
    };
    check(RUN_EVENT_SCHEMA_URL, event, 'event');
    const e = event as { schemaURL?: unknown; run?: { facets?: unknown }; job?: { facets?: unknown }; inputs?: unknown[]; outputs?: unknown[] };
    if (e.schemaURL !== RUN_EVENT_SCHEMA_URL) problems.push({ where: 'event.schemaURL', message: `is ${String(e.schemaURL)}, not ${RUN_EVENT_SCHEMA_URL}` });
    const facets = (bag: unknown, where: string) => {
      for (const [key, facet] of Object.entries((bag ?? {}) as Record<string, { _schemaURL?: string }>)) {
        const url = facet._schemaURL ?? '';
        check(url, facet, `${where}.${key}`);
        const expected = this.facetKeys.get(url);
        if (expected !== undefined && expected !== key) problems.push({ where: `${where}.${key}`, message: `its schema names this facet '${expected}'` });
      }
    };
    facets(e.run?.facets, 'run.facets');
    facets(e.job?.facets, 'job.facets');
    for (const [i, d] of (e.inputs ?? []).entries()) {
      facets((d as { facets?: unknown }).facets, `inputs[${i}].facets`);
      facets((d as { inputFacets?: unknown }).inputFacets, `inputs[${i}].inputFacets`);
    }
    for (const [i, d] of (e.outputs ?? []).entries()) {
      facets((d as { facets?: unknown }).facets, `outputs[${i}].facets`);
      facets((d as { outputFacets?: unknown }).outputFacets, `outputs[${i}].outputFacets`);
    }
    return problems;
  }
}
