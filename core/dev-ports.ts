/**
 * The ports `backfill dev` listens on (the dev server's gRPC port, its Web UI's, the worker's
 * metrics port), compared before anything starts: two of them the same, the second listener
 * fails (the dev server exits before it is ready, and says why only in its log).
 */

/** One port and the flag that sets it; `defaulted` when the flag was not given. */
export type DevPort = { flag: string; port: number; defaulted: boolean };

/** A port near `port` that none of `ports` uses, for the example of the fix. */
function another(port: number, ports: readonly DevPort[]): number {
  const used = new Set(ports.map((entry) => entry.port));
  const candidates = [port + 1000, port - 1000, port + 1, port - 1, port + 2, port - 2];
  return candidates.find((candidate) => candidate >= 1 && candidate <= 65_535 && !used.has(candidate)) ?? port;
}

/** The message for the first two of `ports` that are the same port, or null when all differ. */
export function devPortClash(ports: readonly DevPort[]): string | null {
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [a, b] = [ports[i]!, ports[j]!];
      if (a.port !== b.port) continue;
      const shown = (entry: DevPort) => `${entry.flag} ${entry.port}${entry.defaulted ? ' (its default)' : ''}`;
      // Change the one the user did not choose, else the later one.
      const change = b.defaulted || !a.defaulted ? b : a;
      return `${shown(a)} and ${shown(b)} are the same port, and each needs its own: choose another, e.g. ${change.flag} ${another(change.port, ports)}`;
    }
  }
  return null;
}
