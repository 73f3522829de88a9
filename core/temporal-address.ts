/**
 * The shape of a Temporal frontend address (`host:port`), checked before connecting: the SDK
 * refuses a malformed one only when it connects, and that failure reads as the server being down.
 */

/** Where an address was given, which decides how the message names it and writes its example. */
export type AddressSource = { kind: 'flag' } | { kind: 'env' } | { kind: 'profile'; where: string };

const DEFAULT_PORT = 7233;

/** `--address localhost:7233`, `TEMPORAL_ADDRESS=localhost:7233`, `address = "localhost:7233" in profile 'x' of f` */
function example(source: AddressSource, address: string): string {
  switch (source.kind) {
    case 'flag':
      return `--address ${address}`;
    case 'env':
      return `TEMPORAL_ADDRESS=${address}`;
    case 'profile':
      return `address = "${address}" in ${source.where}`;
  }
}

function named(source: AddressSource): string {
  switch (source.kind) {
    case 'flag':
      return '--address';
    case 'env':
      return 'TEMPORAL_ADDRESS';
    case 'profile':
      return `the address of ${source.where}`;
  }
}

/** What is wrong with the address, and the address that would be right (or a stand-in). */
function problemOf(address: string): { problem: string; fix: string; suggestion: string } | null {
  if (address.trim() === '') return { problem: 'is empty', fix: 'give the Temporal frontend as host:port', suggestion: `localhost:${DEFAULT_PORT}` };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(address);
  if (scheme) {
    const rest = (scheme[2] ?? '').replace(/\/.*$/, '');
    return { problem: `has a scheme (${scheme[1]}://)`, fix: 'drop it: the frontend is host:port', suggestion: rest || `localhost:${DEFAULT_PORT}` };
  }
  const slash = address.indexOf('/');
  if (slash >= 0) {
    const rest = address.slice(0, slash);
    return { problem: `has a path ('${address.slice(slash)}')`, fix: 'drop it: the frontend is host:port', suggestion: rest || `localhost:${DEFAULT_PORT}` };
  }
  if (/\s/.test(address)) return { problem: 'holds a space', fix: 'remove it', suggestion: address.replace(/\s+/g, '') || `localhost:${DEFAULT_PORT}` };
  let host: string;
  let port: string | undefined;
  const ipv6 = /^\[([0-9a-fA-F:.]+)\](?::(.*))?$/.exec(address);
  if (ipv6) {
    host = `[${ipv6[1]}]`;
    port = ipv6[2];
  } else if ((address.match(/:/g) ?? []).length > 1) {
    return { problem: 'has more than one colon', fix: 'write host:port, with an IPv6 host in brackets', suggestion: `[::1]:${DEFAULT_PORT}` };
  } else {
    const colon = address.indexOf(':');
    host = colon >= 0 ? address.slice(0, colon) : address;
    port = colon >= 0 ? address.slice(colon + 1) : undefined;
    if (host === '') return { problem: 'has no host', fix: 'write host:port', suggestion: `localhost${address}` };
    if (!/^[A-Za-z0-9._-]+$/.test(host)) return { problem: `has a host ('${host}') that is not a host name or IP address`, fix: 'write host:port', suggestion: `localhost:${port || DEFAULT_PORT}` };
  }
  if (port === undefined || port === '') return { problem: 'has no port', fix: 'write host:port', suggestion: `${host}:${DEFAULT_PORT}` };
  if (!/^\d+$/.test(port)) return { problem: `has a port ('${port}') that is not a number`, fix: 'write host:port with a port from 1 to 65535', suggestion: `${host}:${DEFAULT_PORT}` };
  const number = Number(port);
  if (number < 1 || number > 65535) return { problem: `has a port (${port}) outside 1–65535`, fix: 'write host:port with a port from 1 to 65535', suggestion: `${host}:${DEFAULT_PORT}` };
  return null;
}

/**
 * The message for an address that is not `host:port` (a host name, an IPv4 address or an IPv6
 * address in brackets; a port from 1 to 65535), or null when it is. A host without a port is
 * refused although the SDK would add 7233: `status`'s plain gRPC path would add 443.
 */
export function temporalAddressProblem(address: string, source: AddressSource): string | null {
  const found = problemOf(address);
  if (found === null) return null;
  const shown = address === '' ? named(source) : `${named(source)} '${address}'`;
  return `${shown} ${found.problem}: ${found.fix}, e.g. ${example(source, found.suggestion)}`;
}
