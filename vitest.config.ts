import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Namespace end-to-end tests share kernel state (names, ports): keep files sequential there.
    fileParallelism: true,
    pool: 'forks',
  },
});
