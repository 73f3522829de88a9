import { describe, expect, it } from 'vitest';
import { devPortClash } from '../../core/dev-ports.ts';

const given = (flag: string, port: number) => ({ flag, port, defaulted: false });
const fallback = (flag: string, port: number) => ({ flag, port, defaulted: true });

describe('devPortClash', () => {
  it('lets different ports through', () => {
    expect(devPortClash([given('--port', 7533), given('--ui-port', 8533), given('--metrics-port', 9464)])).toBeNull();
    expect(devPortClash([fallback('--port', 7233), fallback('--ui-port', 8233)])).toBeNull();
  });

  it('refuses --port and --ui-port given the same, naming both flags and another port', () => {
    expect(devPortClash([given('--port', 7533), given('--ui-port', 7533)])).toBe(
      '--port 7533 and --ui-port 7533 are the same port, and each needs its own: choose another, e.g. --ui-port 8533',
    );
  });

  it('says which one is a default, and suggests changing that one', () => {
    expect(devPortClash([given('--port', 8233), fallback('--ui-port', 8233)])).toBe(
      '--port 8233 and --ui-port 8233 (its default) are the same port, and each needs its own: choose another, e.g. --ui-port 9233',
    );
    expect(devPortClash([fallback('--port', 7233), given('--ui-port', 7233)])).toMatch(/^--port 7233 \(its default\) and --ui-port 7233 are .* e\.g\. --port 8233$/);
  });

  it('compares the metrics port too, and suggests a port in range that none uses', () => {
    expect(devPortClash([given('--port', 7533), given('--ui-port', 65_000), given('--metrics-port', 65_000)])).toBe(
      '--ui-port 65000 and --metrics-port 65000 are the same port, and each needs its own: choose another, e.g. --metrics-port 64000',
    );
  });
});
