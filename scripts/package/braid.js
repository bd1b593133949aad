#!/usr/bin/env node
// The `braid` command of the Debian package (/usr/bin/braid -> /usr/lib/braid/bin/braid.js):
// compiled JavaScript, no TypeScript loader. The clone's bin/braid.js runs the sources instead.
import { main } from '../src/cli/main.js';

// `braid sim list | head`: a closed pipe ends the command quietly, like other Unix tools.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const code = await main(process.argv.slice(2));
if (typeof code === 'number') process.exitCode = code;
