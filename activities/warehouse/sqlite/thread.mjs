// Plain JavaScript: a worker thread starts without the TypeScript loader, so it registers it first.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
