import { defineConfig } from 'vitest/config';

// Every screen in Debian's chromium (playwright-core, no browser download) with Tauri's IPC
// mocked; screenshots go to ui/test-results/screens/.
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
