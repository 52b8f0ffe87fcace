import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // 2-core machines: files run in parallel processes, but not more than the cores.
    maxWorkers: 2,
    pool: 'forks',
  },
});
