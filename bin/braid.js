#!/usr/bin/env node
// The `braid` command. TypeScript sources run through tsx's loader: no build step to forget.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

// Pin the repo's tsconfig: tsx otherwise reads tsconfig.json from the working directory, and
// without ours (jsx: react-jsx) `braid dash` and `braid demo` fail with "React is not defined".
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
// `braid sim list | head`: a closed pipe ends the command quietly, like other Unix tools.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
if (typeof code === 'number') process.exitCode = code;
