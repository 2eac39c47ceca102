// The worker thread's entry. On Node 20 a worker does not get the loader that `tsx`
// registered for the main thread, and vitest's loader does not reach workers either,
// so the worker registers tsx itself before it loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./sql-check-worker.ts');
