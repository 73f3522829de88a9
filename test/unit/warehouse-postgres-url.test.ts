/** backfill's own settings in a PostgreSQL warehouse URL: read, checked and taken out before the driver sees the URL. */
import { describe, expect, it } from 'vitest';
import { postgresSettings, redactSecret, redactUrl } from '../../activities/warehouse/postgres/connection.ts';

describe('postgresSettings', () => {
  it('reads backfill_schema and backfill_pool_size and leaves the driver the rest of the URL', () => {
    expect(postgresSettings('postgres://u:p@h:5432/db?sslmode=require&backfill_schema=analytics_bf&backfill_pool_size=20&application_name=x')).toEqual({
      url: 'postgres://u:p@h:5432/db?sslmode=require&application_name=x',
      options: { schema: 'analytics_bf', poolSize: 20 },
    });
    expect(postgresSettings('postgres://h/db?backfill_pool_size=1')).toEqual({ url: 'postgres://h/db', options: { poolSize: 1 } });
    expect(postgresSettings('postgres://h/db')).toEqual({ url: 'postgres://h/db', options: {} });
  });

  it('reads the query after the user information, where a password may hold unencoded @, / and :', () => {
    expect(postgresSettings('postgres://u:a/b@c:d@h/db?backfill_schema=s')).toEqual({ url: 'postgres://u:a/b@c:d@h/db', options: { schema: 's' } });
  });

  it('refuses an unknown backfill_ setting, a pool size out of range and a schema name that is not plain, without the password', () => {
    const cases: Array<[string, RegExp]> = [
      ['postgres://u:secret@h/db?backfill_poolsize=3', /unknown setting backfill_poolsize: backfill reads backfill_schema and backfill_pool_size/],
      ['postgres://u:secret@h/db?backfill_pool_size=0', /backfill_pool_size '0' is not a number of connections from 1 to 1000/],
      ['postgres://u:secret@h/db?backfill_pool_size=ten', /backfill_pool_size 'ten'/],
      ['postgres://u:secret@h/db?backfill_pool_size=1001', /from 1 to 1000/],
      ['postgres://u:secret@h/db?backfill_schema=a%3Bdrop', /backfill_schema 'a;drop' is not a plain schema name/],
      ['postgres://u:secret@h/db?backfill_schema=1abc', /not a plain schema name/],
    ];
    for (const [url, message] of cases) {
      expect(() => postgresSettings(url), url).toThrow(message);
      expect(() => postgresSettings(url), url).not.toThrow(/secret/);
    }
  });

  it('takes the password out of error text where it sits as one, and anywhere when it is long', () => {
    const short = 'backfill';
    expect(redactSecret('relation "backfill.ledger" does not exist', short)).toBe('relation "backfill.ledger" does not exist');
    expect(redactSecret('cannot reach postgres://backfill:backfill@h/db', short)).toBe('cannot reach postgres://backfill:***@h/db');
    expect(redactSecret('host=h password=backfill user=u', short)).toBe('host=h password=*** user=u');
    expect(redactSecret('{"user":"u","password":"backfill"}', short)).toBe('{"user":"u","password":"***"}');
    expect(redactSecret("{ password: 'backfill' }", short)).toBe("{ password: '***' }");
    const long = 'p@ss/word:with-12+chars';
    expect(redactSecret(`echo ${long} and ${encodeURIComponent(long)}`, long)).toBe('echo *** and ***');
    expect(redactSecret('nothing to hide', '')).toBe('nothing to hide');
  });

  it('redacts the password only', () => {
    expect(redactUrl('postgres://u:s3cret@h/db?backfill_schema=s')).toBe('postgres://u:***@h/db?backfill_schema=s');
  });
});
