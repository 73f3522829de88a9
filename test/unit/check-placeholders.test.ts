import { describe, expect, it } from 'vitest';
import { fillPlaceholders, placeholders } from '../../core/check-placeholders.ts';

describe('check placeholders: one reading for plan and the warehouses', () => {
  it('fills {{this}} and {{previous}}, spaces inside the braces too, and leaves any other {{...}} as written', () => {
    const sql = 'SELECT * FROM {{ this }} t JOIN {{previous}} p ON t.k = p.k WHERE {{thiss}} OR {{ This }}';
    expect(fillPlaceholders(sql, { this: '__this', previous: '__previous' })).toBe('SELECT * FROM __this t JOIN __previous p ON t.k = p.k WHERE {{thiss}} OR {{ This }}');
    expect(placeholders(sql).map((p) => p.name)).toEqual(['this', 'previous', 'thiss', 'This']);
  });
});
