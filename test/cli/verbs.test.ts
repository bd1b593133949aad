/**
 * Every `braid` verb from the clone (node bin/braid.js: the TypeScript sources through tsx), run
 * from a directory outside the repo: `braid dash` and `braid demo` once crashed there with
 * "React is not defined" because tsx read tsconfig.json from the working directory.
 * The same checks run against the installed Debian package in package.e2e.test.ts.
 */
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { verbTests } from './verbs.ts';

const BIN = fileURLToPath(new URL('../../bin/braid.js', import.meta.url));

describe('every braid verb from the clone, outside the repo', () => {
  verbTests(() => [process.execPath, BIN], () => true, () => '');
});
