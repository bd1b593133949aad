// Worker entry of the parallel World (sim/parallel.ts): a worker thread does not inherit the
// parent's tsx loader, so it registers its own (as bin/braid.js does) before loading the TypeScript.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('./parallel-worker.ts');
