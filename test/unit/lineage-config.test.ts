/** Where lineage goes: OpenLineage's client configuration conventions (activities/lineage/config.ts). */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackfillError } from '../../core/errors.ts';
import { describeSettings, lineageSettings, lineageSettingsFromEnv, type ConfigSources } from '../../activities/lineage/config.ts';

const files = (entries: Record<string, string>) => (path: string) => entries[path];
const sources = (env: Record<string, string>, yaml: Record<string, string> = {}): ConfigSources => ({ env, cwd: '/work', home: '/home/u', readFile: files(yaml) });

describe('lineageSettings', () => {
  it('is off when nothing is configured, and says how to turn it on', () => {
    const settings = lineageSettings(sources({}));
    expect(settings).toEqual({ enabled: false, why: expect.stringContaining('OPENLINEAGE_URL') });
  });

  it('OPENLINEAGE_URL: HTTP to <url>/api/v1/lineage, or OPENLINEAGE_ENDPOINT, with OPENLINEAGE_API_KEY as the Bearer token', () => {
    expect(lineageSettings(sources({ OPENLINEAGE_URL: 'http://marquez:5000' }))).toEqual({
      enabled: true,
      namespace: 'backfill',
      source: 'OPENLINEAGE_URL',
      transport: { type: 'http', url: 'http://marquez:5000/api/v1/lineage', timeoutMs: 5000, headers: {}, attempts: 3 },
    });
    const keyed = lineageSettings(sources({ OPENLINEAGE_URL: 'https://lineage.example.com', OPENLINEAGE_ENDPOINT: '/events/v2', OPENLINEAGE_API_KEY: 'k-123' }));
    expect(keyed).toMatchObject({ enabled: true, transport: { type: 'http', url: 'https://lineage.example.com/events/v2', apiKey: 'k-123' } });
  });

  it('joins the endpoint to the URL as the clients do (urljoin)', () => {
    const url = (base: string, endpoint: string) => {
      const s = lineageSettings(sources({ OPENLINEAGE_URL: base, OPENLINEAGE_ENDPOINT: endpoint }));
      return s.enabled && s.transport.type === 'http' ? s.transport.url : undefined;
    };
    expect(url('http://h:5000/', 'api/v1/lineage')).toBe('http://h:5000/api/v1/lineage');
    expect(url('http://h/base/', 'api/v1/lineage')).toBe('http://h/base/api/v1/lineage');
    expect(url('http://h/base', 'api/v1/lineage')).toBe('http://h/api/v1/lineage');
    expect(url('http://h/base', '/x')).toBe('http://h/x');
  });

  it('OPENLINEAGE_DISABLED=true wins over everything', () => {
    expect(lineageSettings(sources({ OPENLINEAGE_DISABLED: ' TRUE ', OPENLINEAGE_URL: 'http://h' }))).toEqual({ enabled: false, why: 'OPENLINEAGE_DISABLED=true' });
    expect(lineageSettings(sources({ OPENLINEAGE_DISABLED: 'false', OPENLINEAGE_URL: 'http://h' }))).toMatchObject({ enabled: true });
  });

  it('OPENLINEAGE_NAMESPACE names the job namespace', () => {
    expect(lineageSettings(sources({ OPENLINEAGE_URL: 'http://h', OPENLINEAGE_NAMESPACE: 'analytics-prod' }))).toMatchObject({ namespace: 'analytics-prod' });
  });

  it('reads openlineage.yml from OPENLINEAGE_CONFIG, else the working directory, else ~/.openlineage', () => {
    const yaml = (url: string) => `transport:\n  type: http\n  url: ${url}\n`;
    const all = { '/etc/ol.yml': yaml('http://named'), '/work/openlineage.yml': yaml('http://cwd'), '/home/u/.openlineage/openlineage.yml': yaml('http://home') };
    const urlOf = (env: Record<string, string>, present: Record<string, string>) => {
      const s = lineageSettings(sources(env, present));
      return s.enabled && s.transport.type === 'http' ? [s.transport.url, s.source] : s;
    };
    expect(urlOf({ OPENLINEAGE_CONFIG: '/etc/ol.yml' }, all)).toEqual(['http://named/api/v1/lineage', '/etc/ol.yml']);
    expect(urlOf({}, all)).toEqual(['http://cwd/api/v1/lineage', '/work/openlineage.yml']);
    expect(urlOf({}, { '/home/u/.openlineage/openlineage.yml': yaml('http://home') })).toEqual(['http://home/api/v1/lineage', '/home/u/.openlineage/openlineage.yml']);
  });

  it('a transport in the file wins over OPENLINEAGE_URL', () => {
    const settings = lineageSettings(sources({ OPENLINEAGE_URL: 'http://env' }, { '/work/openlineage.yml': 'transport:\n  type: console\n' }));
    expect(settings).toMatchObject({ enabled: true, transport: { type: 'console' } });
  });

  it('takes the http transport fields of the clients: endpoint, timeout (s), api_key auth, gzip, custom headers, retry', () => {
    const yaml = [
      'transport:',
      '  type: http',
      '  url: https://lineage.example.com',
      '  endpoint: api/v1/lineage',
      '  timeout: 2.5',
      '  compression: gzip',
      '  auth: { type: api_key, apiKey: secret-1 }',
      '  custom_headers: { X-Team: data }',
      '  retry: { total: 4 }',
    ].join('\n');
    expect(lineageSettings(sources({}, { '/work/openlineage.yml': yaml }))).toMatchObject({
      transport: { type: 'http', url: 'https://lineage.example.com/api/v1/lineage', apiKey: 'secret-1', timeoutMs: 2500, compression: 'gzip', headers: { 'X-Team': 'data' }, attempts: 5 },
    });
    for (const field of ['apikey', 'api_key']) {
      const y = `transport: { type: http, url: 'http://h', auth: { type: api_key, ${field}: k } }`;
      expect(lineageSettings(sources({}, { '/work/openlineage.yml': y }))).toMatchObject({ transport: { apiKey: 'k' } });
    }
  });

  it('takes the file transport: log_file_path and append', () => {
    const settings = lineageSettings(sources({}, { '/work/openlineage.yml': 'transport: { type: file, log_file_path: /var/log/ol/events, append: true }' }));
    expect(settings).toMatchObject({ transport: { type: 'file', path: '/var/log/ol/events', append: true } });
  });

  it('OPENLINEAGE__ variables make the same configuration, JSON values parsed; the file wins where both say something', () => {
    const env = {
      OPENLINEAGE__TRANSPORT__TYPE: 'http',
      OPENLINEAGE__TRANSPORT__URL: 'http://from-env',
      OPENLINEAGE__TRANSPORT__AUTH: '{"type":"api_key","apiKey":"env-key"}',
      OPENLINEAGE__TRANSPORT__TIMEOUT: '9',
    };
    expect(lineageSettings(sources(env))).toMatchObject({ source: 'OPENLINEAGE__ variables', transport: { url: 'http://from-env/api/v1/lineage', apiKey: 'env-key', timeoutMs: 9000 } });
    const merged = lineageSettings(sources(env, { '/work/openlineage.yml': 'transport: { url: "http://from-file" }' }));
    expect(merged).toMatchObject({ transport: { url: 'http://from-file/api/v1/lineage', apiKey: 'env-key' } });
  });

  it('OPENLINEAGE__ keys, headers and addresses are text even when they read as numbers', () => {
    const env = { OPENLINEAGE__TRANSPORT__TYPE: 'http', OPENLINEAGE__TRANSPORT__URL: 'http://marquez:5000' };
    const keyed = lineageSettings(sources({ ...env, OPENLINEAGE__TRANSPORT__AUTH__TYPE: 'api_key', OPENLINEAGE__TRANSPORT__AUTH__APIKEY: '20240613123456' }));
    expect(keyed).toMatchObject({ transport: { apiKey: '20240613123456' } });
    const headed = lineageSettings(sources({ ...env, OPENLINEAGE__TRANSPORT__CUSTOM_HEADERS__X_TOKEN: '123e4567', OPENLINEAGE__TRANSPORT__CUSTOM_HEADERS__X_ID: '90071992547409931234' }));
    expect(headed).toMatchObject({ transport: { headers: { x_token: '123e4567', x_id: '90071992547409931234' } } });
    // Numbers and flags elsewhere are still parsed.
    expect(lineageSettings(sources({ ...env, OPENLINEAGE__TRANSPORT__TIMEOUT: '9' }))).toMatchObject({ transport: { timeoutMs: 9000 } });
  });

  it('transport type noop turns lineage off', () => {
    expect(lineageSettings(sources({ OPENLINEAGE__TRANSPORT__TYPE: 'noop', OPENLINEAGE_URL: 'http://h' }))).toMatchObject({ enabled: false });
  });

  it('refuses what it cannot do, naming the source, the field and the fix', () => {
    const refusal = (env: Record<string, string>, yaml?: string) => {
      try {
        lineageSettings(sources(env, yaml === undefined ? {} : { '/work/openlineage.yml': yaml }));
      } catch (error) {
        expect(error).toBeInstanceOf(BackfillError);
        expect((error as BackfillError).code).toBe('invalid_argument');
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal({}, 'transport: { type: kafka, topic: x }')).toBe("OpenLineage configuration (/work/openlineage.yml): transport type 'kafka' is not supported here: use http, file or console");
    expect(refusal({}, 'transport: { type: http }')).toMatch(/\(\/work\/openlineage\.yml\): transport\.url is required/);
    expect(refusal({ OPENLINEAGE_URL: 'marquez:5000' })).toBe('OpenLineage configuration (OPENLINEAGE_URL): transport.url must be an http:// or https:// URL');
    expect(refusal({}, 'transport: { type: http, url: "http://h", auth: { type: jwt, token: t } }')).toMatch(/transport\.auth type must be 'api_key'/);
    expect(refusal({}, 'transport: { type: http, url: "http://h", auth: { type: api_key } }')).toMatch(/transport\.auth needs apiKey/);
    expect(refusal({}, 'transport: { type: http, url: "http://h", compression: zstd }')).toMatch(/transport\.compression must be 'gzip'/);
    expect(refusal({}, 'transport: { type: http, url: "http://h", verify: false }')).toMatch(/transport\.verify false is not supported: give Node the certificate instead \(NODE_EXTRA_CA_CERTS\)/);
    expect(refusal({}, 'transport: { type: file }')).toMatch(/transport\.log_file_path is required/);
    expect(refusal({}, 'transport: [http]')).toMatch(/transport must be a mapping with a type/);
    expect(refusal({}, '- just\n- a list')).toMatch(/must be a mapping/);
    expect(refusal({}, 'transport: {')).toMatch(/is not valid YAML/);
    // Where, but not the line: it may hold a key or a header.
    const secret = refusal({}, 'transport:\n  type: http\n  url: http://marquez:5000\n  auth:\n    type: api_key\n    apiKey: sk-live-SECRET123: x\n');
    expect(secret).toBe(
      'OpenLineage configuration (/work/openlineage.yml): is not valid YAML: Nested mappings are not allowed in compact mappings at line 6, column 13 (the line is not shown: it may hold a secret)',
    );
    const withPassword = refusal({ OPENLINEAGE_URL: 'https://bob:hunter2@lineage.example.com' });
    expect(withPassword).toBe('OpenLineage configuration (OPENLINEAGE_URL): transport.url must not hold a user or password: give the key as auth: { type: api_key, apiKey } (or OPENLINEAGE_API_KEY)');
    expect(withPassword).not.toContain('hunter2');
    expect(refusal({ OPENLINEAGE_CONFIG: '/nope.yml' })).toBe('OpenLineage configuration (OPENLINEAGE_CONFIG): /nope.yml does not exist: point OPENLINEAGE_CONFIG at an openlineage.yml, or unset it');
  });

  it('describes where events go without the API key', () => {
    const settings = lineageSettings(sources({ OPENLINEAGE_URL: 'http://marquez:5000', OPENLINEAGE_API_KEY: 'very-secret' }));
    const line = describeSettings(settings);
    expect(line).toBe('OpenLineage on: POST http://marquez:5000/api/v1/lineage (Bearer token), job namespace backfill (from OPENLINEAGE_URL)');
    expect(line).not.toContain('very-secret');
    expect(describeSettings(lineageSettings(sources({})))).toMatch(/^OpenLineage off: /);
    const query = describeSettings(lineageSettings(sources({ OPENLINEAGE_URL: 'http://h/?token=abc' })));
    expect(query).toBe('OpenLineage on: POST http://h/api/v1/lineage, job namespace backfill (from OPENLINEAGE_URL)');
    const withQuery = describeSettings(lineageSettings(sources({ OPENLINEAGE_URL: 'http://h/', OPENLINEAGE_ENDPOINT: 'api/v1/lineage?token=abc' })));
    expect(withQuery).toBe('OpenLineage on: POST http://h/api/v1/lineage?…, job namespace backfill (from OPENLINEAGE_URL)');
  });
});

describe('lineageSettingsFromEnv', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-ol-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a real file named by OPENLINEAGE_CONFIG, relative paths from the working directory', () => {
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, 'conf', 'ol.yml'), `transport:\n  type: file\n  log_file_path: ${join(dir, 'events.jsonl')}\n  append: true\n`);
    const settings = lineageSettingsFromEnv({ OPENLINEAGE_CONFIG: join(dir, 'conf', 'ol.yml') });
    expect(settings).toMatchObject({ enabled: true, transport: { type: 'file', path: join(dir, 'events.jsonl'), append: true } });
  });
});
