/** How the long-lived commands that run a worker (worker, dev, demo) stop it: the grace, and what they tell the user. */
import { Option } from '@commander-js/extra-typings';
import { parseDurationFlag } from './duration-flag.ts';

/**
 * With the 7 s a worker may take after it (SHUTDOWN_ABANDON_MS, WAREHOUSE_CLOSE_MS), under the 30 s
 * Kubernetes gives a pod before it kills it; docker-compose.yml gives the workers 30 s too.
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 20_000;

/** --shutdown-grace, the same for `worker` and `dev`. */
export function shutdownGraceOption() {
  return new Option(
    '--shutdown-grace <duration>',
    'on SIGINT or SIGTERM, how long running partitions get to finish before they are cancelled and retried elsewhere, e.g. 20s or 2m (a bare number counts seconds; 0: cancel them at once; a second signal stops at once)',
  )
    .argParser((v) => parseDurationFlag('--shutdown-grace', v, { maxMs: 3_600_000 }))
    .default(DEFAULT_SHUTDOWN_GRACE_MS, '20s');
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** What a worker stopped by `signal` says it does, with `running` activities in flight. */
export function stoppingMessage(signal: NodeJS.Signals, graceMs: number, running: number): string {
  const again = signal === 'SIGINT' ? 'Ctrl-C again to stop at once' : 'a second signal stops at once';
  if (running === 0) return `${signal}: stopping (no partition is running)`;
  const count = `${running} running`;
  if (graceMs === 0) return `${signal}: stopping; running partitions are cancelled now and run again later (${count}; --shutdown-grace 0)`;
  return `${signal}: stopping; running partitions get up to ${seconds(graceMs)} to finish (${count}; ${again})`;
}

/**
 * The worker's last line once a signal stopped it: what ended during the grace, what went back
 * to the server (cancelled or failed there: another worker runs it again, and nothing was half-published).
 */
export function stoppedMessage(signal: NodeJS.Signals, ended: { finished: number; handedBack: number }): string {
  const activities = (n: number) => `${n} partition activit${n === 1 ? 'y' : 'ies'}`;
  if (ended.finished + ended.handedBack === 0) return `${signal}: stopped; no partition was running`;
  return `${signal}: stopped; ${activities(ended.finished)} finished during the grace, ${ended.handedBack} handed back to the server (another worker runs ${ended.handedBack === 1 ? 'it' : 'them'} again)`;
}
