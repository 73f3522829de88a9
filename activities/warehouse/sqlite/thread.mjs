// The thread's entry when running from the sources (threaded.ts): a worker thread starts without
// the TypeScript loader, so it registers it first. Compiled code starts thread.js instead.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
