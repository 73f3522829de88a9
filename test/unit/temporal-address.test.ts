import { describe, expect, it } from 'vitest';
import { temporalAddressProblem } from '../../core/temporal-address.ts';

const flag = { kind: 'flag' } as const;

describe('temporalAddressProblem', () => {
  it('lets host:port through: a host name, an IPv4 address, an IPv6 address in brackets', () => {
    for (const address of ['localhost:7233', 'temporal.internal:7233', '127.0.0.1:1', 'analytics.a1b2c.tmprl.cloud:65535', '[::1]:7233', '[2001:db8::1]:443', 'my_host-1:7233']) {
      expect(temporalAddressProblem(address, flag), address).toBeNull();
    }
  });

  it('refuses an empty --address, naming the flag and an example', () => {
    expect(temporalAddressProblem('', flag)).toBe('--address is empty: give the Temporal frontend as host:port, e.g. --address localhost:7233');
  });

  it('refuses a port that is not a number, or outside 1–65535', () => {
    expect(temporalAddressProblem('localhost:abc', flag)).toBe(
      "--address 'localhost:abc' has a port ('abc') that is not a number: write host:port with a port from 1 to 65535, e.g. --address localhost:7233",
    );
    expect(temporalAddressProblem('localhost:0', flag)).toMatch(/port \(0\) outside 1–65535/);
    expect(temporalAddressProblem('localhost:65536', flag)).toMatch(/port \(65536\) outside 1–65535/);
    expect(temporalAddressProblem('[::1]:x', flag)).toMatch(/port \('x'\) that is not a number.*e\.g\. --address \[::1\]:7233$/);
  });

  it('refuses a scheme, with a hint to drop it', () => {
    expect(temporalAddressProblem('http://localhost:7533', flag)).toBe(
      "--address 'http://localhost:7533' has a scheme (http://): drop it: the frontend is host:port, e.g. --address localhost:7533",
    );
    expect(temporalAddressProblem('grpc://temporal:7233/', flag)).toMatch(/scheme \(grpc:\/\/\).*e\.g\. --address temporal:7233$/);
  });

  it('refuses a trailing slash or a path', () => {
    expect(temporalAddressProblem('localhost:7533/', flag)).toBe("--address 'localhost:7533/' has a path ('/'): drop it: the frontend is host:port, e.g. --address localhost:7533");
    expect(temporalAddressProblem('localhost:7533/api/v1', flag)).toMatch(/path \('\/api\/v1'\)/);
  });

  it('refuses a host without a port (status\'s plain gRPC path would use 443), a port without a host, and an IPv6 address without brackets', () => {
    expect(temporalAddressProblem('temporal.internal', flag)).toBe("--address 'temporal.internal' has no port: write host:port, e.g. --address temporal.internal:7233");
    expect(temporalAddressProblem('localhost:', flag)).toMatch(/has no port/);
    expect(temporalAddressProblem(':7233', flag)).toMatch(/has no host: write host:port, e\.g\. --address localhost:7233$/);
    expect(temporalAddressProblem('::1:7233', flag)).toMatch(/more than one colon: write host:port, with an IPv6 host in brackets, e\.g\. --address \[::1\]:7233$/);
    expect(temporalAddressProblem('local host:7233', flag)).toMatch(/holds a space: remove it/);
  });

  it('names where the address came from, and writes the example that way', () => {
    expect(temporalAddressProblem('localhost:abc', { kind: 'env' })).toMatch(/^TEMPORAL_ADDRESS 'localhost:abc' .*e\.g\. TEMPORAL_ADDRESS=localhost:7233$/);
    expect(temporalAddressProblem('http://t:7233', { kind: 'profile', where: "profile 'prod' in /x/temporal.toml" })).toMatch(
      /^the address of profile 'prod' in \/x\/temporal\.toml 'http:\/\/t:7233' has a scheme .*e\.g\. address = "t:7233" in profile 'prod' in \/x\/temporal\.toml$/,
    );
  });
});
