#!/usr/bin/env node
// Runs a TypeScript entry point without a build step (tsx's ESM loader), so a fresh clone
// works after `npm ci` alone. Usage: node bin/run-ts.js FILE.ts [args...]
import { register } from 'tsx/esm/api';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

// Pin the repo's tsconfig: tsx otherwise reads tsconfig.json from the working directory, and
// without ours (jsx: react-jsx) `braid dash` and `braid demo` fail with "React is not defined".
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const [, , entry, ...rest] = process.argv;
if (!entry) {
  process.stderr.write('usage: run-ts.js FILE.ts [args...]\n');
  process.exit(2);
}
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(resolve(entry)).href);
